"""Alert lifecycle with a fake clock: pending, firing, severity changes, hysteresis, flapping, resolution."""

from alerts.evaluation import lifecycle
from alerts.evaluation.lifecycle import FLAP_STABLE_S, FLAP_TRANSITIONS, FLAP_WINDOW_S, Alert, Lifecycle, Observation

SKU = {"campaign": "c", "sku": "A"}


def obs(triggered=(), recovered=(), value=None, rule="stock_low", labels=SKU) -> Observation:
    return Observation(rule, labels, frozenset(triggered), frozenset(recovered), {"value": value})


def kinds(transitions) -> list[tuple[str, str]]:
    return [(t.kind, t.severity) for t in transitions]


def test_pending_waits_out_for_then_fires_once():
    life = Lifecycle()
    assert life.observe([obs({"warning"})], 0.0, {"stock_low": 30}) == []
    assert life.alerts[obs().fingerprint].status == "pending"
    assert life.observe([obs({"warning"})], 20.0, {"stock_low": 30}) == []
    fired = life.observe([obs({"warning"})], 30.0, {"stock_low": 30})
    assert kinds(fired) == [("firing", "warning")]
    assert life.observe([obs({"warning"})], 40.0, {"stock_low": 30}) == []


def test_pending_that_clears_never_fires():
    life = Lifecycle()
    life.observe([obs({"warning"})], 0.0, {"stock_low": 30})
    assert life.observe([obs(recovered={"warning"})], 10.0, {"stock_low": 30}) == []
    assert life.alerts == {}


def test_one_alert_escalates_and_deescalates_with_hysteresis():
    life = Lifecycle()
    first = life.observe([obs({"reminder"})], 0.0, {})
    alert_id = first[0].alert.id
    up = life.observe([obs({"reminder", "warning", "emergency"})], 1.0, {})
    assert kinds(up) == [("escalated", "emergency")] and up[0].alert.id == alert_id
    hovering = life.observe([obs({"reminder", "warning"})], 2.0, {})
    assert hovering == [], "emergency holds until its recovery threshold is passed"
    down = life.observe([obs({"reminder", "warning"}, recovered={"emergency"})], 3.0, {})
    assert kinds(down) == [("deescalated", "warning")] and down[0].previous_severity == "emergency"
    resolved = life.observe([obs(recovered={"reminder", "warning", "emergency"})], 4.0, {})
    assert kinds(resolved) == [("resolved", "warning")] and resolved[0].alert.id == alert_id


def test_value_in_the_hysteresis_band_keeps_the_alert_firing():
    life = Lifecycle()
    life.observe([obs({"warning"})], 0.0, {})
    for t in range(1, 10):
        assert life.observe([obs()], float(t), {}) == []
    assert life.alerts[obs().fingerprint].status == "firing"


def test_a_new_occurrence_after_resolution_gets_a_new_id():
    life = Lifecycle()
    first = life.observe([obs({"warning"})], 0.0, {})[0].alert.id
    life.observe([obs(recovered={"warning"})], 5.0, {})
    second = life.observe([obs({"warning"})], 6.0, {})[0].alert.id
    assert first != second


def test_flapping_is_detected_and_holds_the_resolution():
    life = Lifecycle()
    t = 0.0
    transitions = []
    for _ in range(FLAP_TRANSITIONS):
        transitions += life.observe([obs({"warning"})], t, {})
        transitions += life.observe([obs(recovered={"warning"})], t + 1, {})
        t += 10
    assert [tr.kind for tr in transitions].count("firing") >= 2
    assert life.alerts[obs().fingerprint].flapping
    assert life.observe([obs(recovered={"warning"})], t + FLAP_STABLE_S / 2, {}) == []
    refire = life.observe([obs({"warning"})], t + FLAP_STABLE_S * 0.75, {})
    assert refire == [], "a flapping alert that triggers again stays the same firing alert"
    t += FLAP_STABLE_S
    resolved = life.observe([obs(recovered={"warning"})], t, {})
    assert resolved == []
    resolved = life.observe([obs(recovered={"warning"})], t + FLAP_STABLE_S - 1, {})
    assert resolved == [], "not yet stable long enough"
    resolved = life.observe([obs(recovered={"warning"})], t + FLAP_STABLE_S, {})
    assert kinds(resolved) == [("resolved", "warning")] and resolved[0].flapping, "stable for FLAP_STABLE_S"


def test_unobserved_fingerprint_resolves():
    life = Lifecycle()
    life.observe([obs({"emergency"})], 0.0, {})
    assert kinds(life.observe([], 1.0, {})) == [("resolved", "emergency")]


def test_restored_firing_alert_is_not_fired_again():
    restored = Alert(
        id="x-1",
        fingerprint=obs().fingerprint,
        rule="stock_low",
        labels=SKU,
        status="firing",
        severity="warning",
        active={"warning"},
        pending_since=0.0,
        fired_at=0.0,
    )
    life = Lifecycle([restored])
    assert life.observe([obs({"warning"})], 100.0, {}) == []
    assert life.acknowledge("x-1", "duty-manager", "on it", 101.0).acknowledged_by == "duty-manager"
    assert life.acknowledge("nope", "x", None, 101.0) is None


def test_resolved_alerts_flips_are_kept_for_the_flap_window_and_at_most_max_recent_resolved(monkeypatch, caplog):
    monkeypatch.setattr(lifecycle, "MAX_RECENT_RESOLVED", 3)
    life = Lifecycle()

    def sku(name: str, triggered=("warning",)) -> Observation:
        return obs(set(triggered), labels={"campaign": "c", "sku": name})

    for i, name in enumerate("ABCD"):
        life.observe([sku(name)], 10.0 * i, {})
        life.observe([], 10.0 * i + 1, {})
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "flap history full: a resolved alert's flips are forgotten before the flap window ends"
    ], "A, resolved first, is forgotten within the window: said so"
    life.observe([sku("A"), sku("D")], 40.0, {})
    flips = {alert.labels["sku"]: alert.flips for alert in life.alerts.values()}
    assert flips == {"A": [40.0], "D": [30.0, 31.0, 40.0]}
    life.observe([], 41.0, {})
    caplog.clear()
    later = 41.0 + FLAP_WINDOW_S
    life.observe([sku("E")], later, {})
    life.observe([], later + 1, {})
    assert not [r for r in caplog.records if r.levelname == "WARNING"], "flips past the window go silently"
    life.observe([sku("D")], later + 2, {})
    assert life.alerts[sku("D").fingerprint].flips == [later + 2], "D's old flips expired with the window"
