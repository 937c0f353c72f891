"""Notify files: contact points and routes, validated with line-precise errors that never show a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.notify import notifyfile, routing
from app import cli
from app.core.configfile import ConfigError

ROOT = Path(__file__).resolve().parent.parent
GOOD = """
contact_points:
  duty:
    urls: ["json://127.0.0.1:9/${HOOK_PATH}"]
route:
  routes:
    - match: ["severity=emergency"]
      receiver: duty
      continue: true
    - match: ["severity=~warning|emergency", "sku=~.+"]
      receiver: duty
      group_by: [sku]
      group_wait: 2s
"""


def error(text: str, monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        notifyfile.parse(text, "notify.yaml")
    return str(caught.value)


def test_routes_inherit_timing_and_continue_reaches_later_siblings(monkeypatch):
    monkeypatch.setenv("HOOK_PATH", "hook")
    parsed = notifyfile.parse(GOOD, "notify.yaml")
    matched = parsed.match({"severity": "emergency", "sku": "SKU-1", "campaign": "d11", "rule": "stock_low"})
    assert [r.path for r in matched] == ["0.0", "0.1"]
    assert matched[0].group_wait == 0.5 and matched[1].group_wait == 2.0 and matched[1].group_by == ("sku",)
    assert matched[1].group_key({"sku": "SKU-1", "campaign": "d11"}) == "sku=SKU-1"
    assert [r.path for r in parsed.match({"severity": "warning"})] == ["0"], "the root when no child matches"
    assert parsed.match({"severity": "warning"})[0].receiver is None


def test_unknown_receiver_missing_variable_and_bad_url_name_their_line(monkeypatch, caplog):
    monkeypatch.delenv("HOOK_PATH", raising=False)
    assert error(GOOD) == "notify.yaml:4:12: contact_points.duty.urls[0]: environment variable HOOK_PATH is not set"
    monkeypatch.setenv("HOOK_PATH", "hook")
    assert error(GOOD.replace("      receiver: duty\n      group_by", "      receiver: nobody\n      group_by")) == (
        "notify.yaml:11:17: route.routes[1].receiver: no contact point named 'nobody'"
    )
    bad = error(GOOD.replace("json://127.0.0.1:9/${HOOK_PATH}", "nosuch://${HOOK_PATH}-secret"))
    assert (
        bad.startswith("notify.yaml:4:12: contact_points.duty.urls[0]: Apprise does not understand")
        and "secret" not in bad
    )
    assert "secret" not in caplog.text, "Apprise logs unparseable URLs whole; the check silences it"


def test_schema_errors_name_field_and_line():
    assert error(GOOD.replace("group_wait: 2s", "group_wait: soon")) == (
        "notify.yaml:13:19: route.routes[1].group_wait: must be a duration such as 30s, 5m or 1h"
    )
    assert (
        error(GOOD.replace("continue: true", "contineu: true"))
        == "notify.yaml:9:17: route.routes[0].contineu: unknown field"
    )
    assert "not a matcher" in error(GOOD.replace('"severity=emergency"', '"severity"'))
    assert "in order" in error(
        GOOD.replace(
            "      continue: true", "      escalate: [{after: 10m, receiver: duty}, {after: 5m, receiver: duty}]"
        )
    )


def test_a_missing_file_means_no_chat_channels(tmp_path):
    loaded = notifyfile.load(tmp_path / "absent.yaml")
    assert loaded.contact_points == {} and [r.receiver for r in loaded.routes] == [None]


def test_cli_checks_the_shipped_example(monkeypatch, capsys):
    for name in (
        "DINGTALK_TOKEN",
        "DINGTALK_SECRET",
        "WECOM_BOT_KEY",
        "FEISHU_BOT_TOKEN",
        "SLACK_TOKEN_A",
        "SLACK_TOKEN_B",
        "SLACK_TOKEN_C",
        "PAGERDUTY_INTEGRATION_KEY",
        "PAGERDUTY_API_KEY",
    ):
        monkeypatch.setenv(name, "abcdefabcdef1234567890abcdef1234")
    monkeypatch.setenv("INCIDENT_HOOK_HOST", "hooks.example.com")
    with pytest.raises(SystemExit) as done:
        cli.main(["notify", "check", str(ROOT / "notify.example.yaml")])
    assert done.value.code == 0
    assert "5 contact points (6 URLs), 5 routes OK" in capsys.readouterr().out
    monkeypatch.delenv("WECOM_BOT_KEY")
    with pytest.raises(SystemExit) as done:
        cli.main(["notify", "check", str(ROOT / "notify.example.yaml")])
    assert done.value.code == 1 and "WECOM_BOT_KEY is not set" in capsys.readouterr().err


def test_route_keys_survive_adding_a_route_in_front(monkeypatch):
    monkeypatch.setenv("HOOK_PATH", "hook")
    before = {r.path: r.key for r in notifyfile.parse(GOOD).routes}
    extended = GOOD.replace("  routes:\n", '  routes:\n    - match: ["rule=new_rule"]\n      receiver: duty\n')
    after = {r.path: r.key for r in notifyfile.parse(extended).routes}
    assert after["0.1"] == before["0.0"] and after["0.2"] == before["0.1"] and len(set(after.values())) == 4


def test_serve_refuses_an_invalid_notify_file_with_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "notify.yaml").write_text('contact_points:\n  x:\n    urls: ["bogus://token-secret-1"]\n')
    monkeypatch.setenv("WARROOM_NOTIFY_FILE", str(tmp_path / "notify.yaml"))
    monkeypatch.setenv("WARROOM_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SystemExit) as done:
        cli.main(["serve", "--port", "1"])
    message = str(done.value.code)
    assert message.startswith(f"warroom: {tmp_path / 'notify.yaml'}:3:12: contact_points.x.urls[0]:")
    assert "secret" not in message


def test_the_pure_parser_expands_urls_from_the_environment_it_is_given(monkeypatch):
    monkeypatch.delenv("HOOK_PATH", raising=False)
    parsed = routing.parse(GOOD, "notify.yaml", environ={"HOOK_PATH": "hook"}, understood=lambda url: True)
    assert parsed.contact_points["duty"].urls == ["json://127.0.0.1:9/hook"], "expanded once, at load"
    checked: list[str] = []
    with pytest.raises(ConfigError, match="Apprise does not understand"):
        routing.parse(
            GOOD, "notify.yaml", environ={"HOOK_PATH": "hook"}, understood=lambda url: bool(checked.append(url))
        )
    assert checked == ["json://127.0.0.1:9/hook"], "the check sees the expanded URL"


def test_a_rehearsals_alerts_reach_only_routes_that_name_rehearsals(monkeypatch):
    """A rehearsal's alerts (``rehearsal="true"``, see ``warroom rehearse``) go to no chat channel, not even the
    root's, unless a route (or a parent of it) matches on ``rehearsal``."""
    monkeypatch.setenv("HOOK_PATH", "hook")
    emergency = {"severity": "emergency", "sku": "SKU-1", "campaign": "rehearsal-2025", "rule": "stock_low"}
    rehearsal = {**emergency, "rehearsal": "true"}
    parsed = notifyfile.parse(GOOD, "notify.yaml")
    assert [r.path for r in parsed.match(emergency)] == ["0.0", "0.1"]
    assert parsed.match(rehearsal) == [], "no route names rehearsals: wall, stream and on-call page only"
    asking = GOOD.replace(
        "  routes:\n",
        '  routes:\n    - match: ["rehearsal=true"]\n      receiver: duty\n'
        '      routes:\n        - match: ["severity=emergency"]\n          group_wait: 1s\n',
    )
    parsed = notifyfile.parse(asking, "notify.yaml")
    matched = parsed.match(rehearsal)
    assert [r.path for r in matched] == ["0.0.0"], "a child inherits its parent's matcher on rehearsal"
    assert matched[0].receiver == "duty" and matched[0].rehearsals
    assert [r.path for r in parsed.match(emergency)] == ["0.1", "0.2"], "live alerts route as before"
