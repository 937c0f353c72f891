"""The dispatcher's decisions with a fake clock: grouping, routing, repeats, escalation, resolution."""

from __future__ import annotations

from alerts.notify import notifyfile
from alerts.notify.dispatch import Dispatcher, Flush, LogEntry, Notice

CONFIG = """
contact_points:
  duty:
    urls: ["json://127.0.0.1:9/duty"]
  team:
    urls: ["json://127.0.0.1:9/team"]
  merch:
    urls: ["json://127.0.0.1:9/merch"]
    send_resolved: false
  lead:
    urls: ["json://127.0.0.1:9/lead"]
route:
  group_wait: 1s
  group_interval: 30s
  repeat_interval: 1h
  routes:
    - match: ["severity=emergency"]
      receiver: duty
      continue: true
      repeat_interval: 5m
      escalate:
        - after: 5m
          receiver: lead
    - match: ["severity=emergency"]
      receiver: team
    - match: ["severity=warning", "sku=~.+"]
      receiver: merch
"""


def notice(i: int | str, severity: str = "warning", fired_at: float = 0.0, rule: str = "stock_low", **extra) -> Notice:
    labels = {"campaign": "d11", "rule": rule, "severity": severity, "sku": f"SKU-{i}"}
    return Notice(f"a{i}", labels, extra.pop("firing", True), fired_at, **extra)


class Harness:
    """A dispatcher plus the log its caller would persist, stepped by a fake clock."""

    def __init__(self, text: str = CONFIG) -> None:
        self.dispatcher = Dispatcher(notifyfile.parse(text))
        self.log: dict = {}
        self.sent: list[Flush] = []

    def step(self, notices: list[Notice], now: float) -> list[Flush]:
        flushes, _ = self.dispatcher.plan(notices, self.log, now)
        for flush in flushes:
            self.log[flush.group] = flush.entry
        sent = [f for f in flushes if f.send]
        self.sent += sent
        return sent

    def run(self, timeline: dict[float, list[Notice]], until: float, tick: float = 0.5, start: float = 0.0) -> None:
        notices: list[Notice] = []
        now = start
        while now <= until:
            notices = timeline.get(now, notices)
            self.step(notices, now)
            now = round(now + tick, 3)


def test_forty_skus_selling_out_in_a_minute_become_a_few_messages_not_forty():
    h = Harness()
    timeline = {}
    alive: list[Notice] = []
    for i in range(40):
        at = 1.5 * i
        alive = alive + [notice(i, fired_at=at)]
        timeline[at] = list(alive)
    h.run(timeline, until=120)
    assert {f.receiver for f in h.sent} == {"merch"}
    assert 2 <= len(h.sent) <= 4
    assert h.sent[0].kind == "firing" and len(h.sent[0].firing) == 1, "the first arrives after group_wait"
    assert sum(len(f.new) for f in h.sent) == 40, "every alert announced exactly once"
    assert len(h.sent[-1].firing) == 40


def test_group_wait_collects_alerts_of_one_cause_into_the_first_message():
    h = Harness()
    alerts = [notice(i, fired_at=0.0) for i in range(5)]
    assert h.step(alerts, 0.0) == []
    [flush] = h.step(alerts, 1.0)
    assert flush.kind == "firing" and len(flush.firing) == 5 and flush.group[2] == "campaign=d11,rule=stock_low"


def test_emergency_goes_to_duty_and_team_via_continue_and_not_to_merch():
    h = Harness()
    alert = notice(1, "emergency")
    h.step([alert], 0.0)
    sent = h.step([alert], 1.0)
    assert sorted(f.receiver for f in sent) == ["duty", "team"]


def test_alert_matching_no_route_reaches_no_chat_channel():
    h = Harness()
    reminder = notice(1, "reminder")
    h.run({0.0: [reminder]}, until=10)
    assert h.sent == []


def test_unacknowledged_emergency_repeats_and_acknowledgment_stops_repeats_and_escalation():
    h = Harness(CONFIG.replace('    - match: ["severity=emergency"]\n      receiver: team\n', ""))
    alert = notice(1, "emergency")
    h.run({0.0: [alert]}, until=299.5, tick=0.5)
    assert [f.kind for f in h.sent] == ["firing"]
    h.step([alert], 300.0)
    assert len(h.sent) == 1, "escalation counts from the first message (at 1.0), not from firing"
    h.step([alert], 301.0)
    assert sorted((f.receiver, f.kind) for f in h.sent[1:]) == [("duty", "repeat"), ("lead", "escalation")]
    h.run({302.0: [alert]}, start=302.0, until=601.0)
    assert sorted((f.receiver, f.kind) for f in h.sent[3:]) == [("duty", "repeat"), ("lead", "repeat")]

    acked = notice(1, "emergency", acknowledged=True)
    before = len(h.sent)
    h.run({602.0: [acked]}, start=602.0, until=4000, tick=30)
    assert len(h.sent) == before, "no repeats once acknowledged"


def test_acknowledged_alert_is_not_escalated():
    h = Harness()
    acked = notice(1, "emergency", acknowledged=True)
    h.run({0.0: [acked]}, until=900, tick=15)
    assert "lead" not in {f.receiver for f in h.sent}


def test_resolution_is_announced_where_the_alert_was_announced():
    h = Harness()
    alert = notice(1, "emergency")
    for now in (0.0, 1.0, 300.0, 301.0):
        h.step([alert], now)
    assert sorted(f.receiver for f in h.sent) == ["duty", "lead", "team"]
    gone = notice(1, "emergency", firing=False)
    for now in (302.0, 331.0, 360.0):
        h.step([gone], now)
    resolved = [f for f in h.sent if f.kind == "resolved"]
    assert sorted(f.receiver for f in resolved) == ["duty", "lead", "team"]
    assert all(f.resolved[0].id == "a1" and f.firing == () for f in resolved)
    h.run({400.0: [gone]}, until=2000, tick=50)
    assert len([f for f in h.sent if f.kind == "resolved"]) == 3, "announced once"


def test_send_resolved_false_updates_the_log_without_a_message():
    h = Harness()
    alert = notice(1, "warning")
    h.step([alert], 0.0)
    h.step([alert], 1.0)
    gone = notice(1, "warning", firing=False)
    for now in (31.0, 61.0):
        flushes, _ = h.dispatcher.plan([gone], h.log, now)
        for flush in flushes:
            h.log[flush.group] = flush.entry
            assert flush.kind == "resolved" and not flush.send
    assert all(not entry.firing for entry in h.log.values())
    assert [f.kind for f in h.sent] == ["firing"]


def test_muted_alerts_are_not_sent():
    h = Harness()
    h.run({0.0: [notice(1, "emergency", muted=True)]}, until=60)
    assert h.sent == []


def test_a_restarted_dispatcher_with_the_stored_log_sends_nothing_twice():
    h = Harness()
    alerts = [notice(i) for i in range(3)]
    h.run({0.0: alerts}, until=5)
    assert len(h.sent) == 1
    restarted = Harness()
    restarted.log = dict(h.log)
    restarted.run({0.0: alerts}, until=60)
    assert restarted.sent == []
    restarted.run({61.0: alerts + [notice(9)]}, start=61.0, until=120)
    assert [sorted(f.new) for f in restarted.sent] == [["a9"]]


def test_alert_resolved_while_down_is_announced_after_restart():
    h = Harness()
    alerts = [notice(1)]
    h.run({0.0: alerts}, until=5)
    restarted = Harness()
    restarted.log = dict(h.log)
    restarted.run({0.0: [notice(1, firing=False)]}, until=5)
    assert restarted.sent == [] and all(not e.firing for e in restarted.log.values()), "merch has send_resolved: false"
    team = Harness()
    emergency = notice(2, "emergency")
    team.run({0.0: [emergency]}, until=5)
    again = Harness()
    again.log = dict(team.log)
    again.run({0.0: [notice(2, "emergency", firing=False)]}, until=5)
    assert sorted(f.receiver for f in again.sent) == ["duty", "team"] and all(f.kind == "resolved" for f in again.sent)


def test_wake_time_covers_group_wait_group_interval_and_the_next_escalation_step():
    dispatcher = Dispatcher(notifyfile.parse(CONFIG))
    alert = notice(1, "emergency", fired_at=100.0)
    _, wake = dispatcher.plan([alert], {}, 100.0)
    assert wake == 101.0, "group_wait"
    flushes, wake = dispatcher.plan([alert], {}, 101.0)
    assert wake == 131.0, "group_interval"
    slow = Dispatcher(notifyfile.parse(CONFIG.replace("group_interval: 30s", "group_interval: 1h")))
    slow.plan([alert], {}, 100.0)
    flushes, _ = slow.plan([alert], {}, 101.0)
    _, wake = slow.plan([alert], {f.group: f.entry for f in flushes}, 102.0)
    assert len(flushes) == 2 and wake == 401.0, "the escalation step 5 minutes after the first message"


def test_log_entry_counts_flushes():
    h = Harness()
    alert = notice(1)
    h.run({0.0: [alert]}, until=2)
    [entry] = h.log.values()
    assert entry == LogEntry({"a1": (1.0, "warning")}, 1.0, 1)


ROOT_ONLY = """
contact_points:
  team: {urls: ["json://127.0.0.1:9/team"]}
route: {receiver: team, group_wait: 1s, group_interval: 10s}
"""


def test_a_severity_rise_within_a_group_is_news():
    h = Harness(ROOT_ONLY)
    h.run({0.0: [notice(1, "warning")]}, until=5)
    h.run({6.0: [notice(1, "emergency")]}, start=6.0, until=20)
    assert [(f.kind, f.severity) for f in h.sent] == [("firing", "warning"), ("firing", "emergency")]
    h.run({21.0: [notice(1, "warning")]}, start=21.0, until=60)
    assert len(h.sent) == 2, "a fall is not paged"


def test_an_alert_muted_after_it_was_announced_still_has_its_resolution_announced():
    h = Harness(ROOT_ONLY)
    h.run({0.0: [notice(1)]}, until=5)
    h.run({6.0: [notice(1, muted=True)]}, start=6.0, until=40)
    assert len(h.sent) == 1
    h.run({41.0: [notice(1, firing=False)]}, start=41.0, until=60)
    assert [f.kind for f in h.sent] == ["firing", "resolved"]


def test_a_long_warning_turning_emergency_pages_the_duty_manager_before_escalating():
    h = Harness()
    h.run({0.0: [notice(1, "warning")]}, until=1200, tick=10)
    h.run({1201.0: [notice(1, "emergency")]}, start=1201.0, until=1300, tick=0.5)
    emergency = [f for f in h.sent if f.receiver in ("duty", "team", "lead")]
    assert sorted(f.receiver for f in emergency) == ["duty", "team"], "no escalation yet: duty was just told"
