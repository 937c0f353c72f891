"""One campaign judged at its own clock: the rules' observations and the alert transitions they cause.

The server (``alerts/evaluation/live.py``) and an in-process rehearsal (``alerts/evaluation/rehearsal.py``) both
judge through here, so a rehearsal runs exactly the code that runs live. Pure: the wall time is passed in.
"""

from __future__ import annotations

from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.lifecycle import Lifecycle, Observation, Transition
from alerts.evaluation.metricview import EngineView
from alerts.evaluation.views import REHEARSAL_MARKS
from app.metrics.engine import Engine


def judge(
    engine: Engine, campaign: str, wall: float, evaluator: Evaluator, lifecycle: Lifecycle
) -> tuple[list[Observation], list[Transition]]:
    """Evaluate every rule for ``campaign`` at its clock (wall time ``wall``) and apply the result to its alerts.

    A campaign whose stored events are still being read back is held (``Lifecycle.hold``); one whose night is not
    on is observed as empty, so its open alerts resolve. A replayed night's alerts carry ``REHEARSAL_MARKS``.
    """
    if campaign in engine.pending:
        lifecycle.hold(campaign)
        return [], []
    view = EngineView(engine, campaign, wall)
    found = evaluator.evaluate(view, REHEARSAL_MARKS if view.clock.mode == "replay" else None)
    return found, lifecycle.observe(found, view.now, evaluator.for_seconds(), campaign)
