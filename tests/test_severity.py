"""One ordered severity: its order, its labels, and the SQL that lists stored alerts most severe first."""

from __future__ import annotations

from alerts.evaluation import store
from alerts.evaluation.lifecycle import Alert, Transition
from alerts.evaluation.messages import AlertText
from alerts.evaluation.severity import MOST_SEVERE_FIRST, Severity, most_severe, rank

TEXT = AlertText()


def test_severity_is_ordered_least_severe_first_and_is_its_name():
    assert list(Severity) == ["reminder", "warning", "emergency"]
    assert [s.rank for s in Severity] == [0, 1, 2]
    assert MOST_SEVERE_FIRST == (Severity.EMERGENCY, Severity.WARNING, Severity.REMINDER)
    assert Severity("warning") is Severity.WARNING and f"{Severity.WARNING}" == "warning"
    assert (Severity.EMERGENCY.zh, Severity.EMERGENCY.en) == ("紧急", "Emergency")
    assert most_severe(["warning", "emergency", "reminder"]) == "emergency"
    assert rank("bogus") < rank("reminder"), "text that names no severity ranks below every severity"


def firing(number: int, severity: str, fired_at: float) -> Transition:
    alert = Alert(
        id=f"a{number}",
        fingerprint=f"f{number}",
        rule="r",
        labels={"campaign": "c"},
        status="firing",
        severity=severity,
        active={severity},
        pending_since=fired_at,
        fired_at=fired_at,
    )
    return Transition("firing", alert, fired_at, severity, None, {}, False)


async def test_stored_alerts_are_listed_most_severe_first_then_newest(db):
    stored = [firing(1, "reminder", 300.0), firing(2, "emergency", 100.0), firing(3, "warning", 200.0)]
    await store.record(db, [*stored, firing(4, "emergency", 400.0)], lambda transition: TEXT)
    rows = await store.alerts(db, status=None, severity=None, campaign=None, rule=None, limit=10)
    assert [row.id for row in rows] == ["a4", "a2", "a3", "a1"]
