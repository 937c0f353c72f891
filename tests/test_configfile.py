"""Configuration files (campaigns, rules): every error names file, line, column and field."""

import pytest

from app.campaigns.model import parse
from app.core.configfile import ConfigError
from tests.helpers import ALIAS_BOMB

CAMPAIGN = """id: d11
name: Double 11
phases:
  preheat: {start: 2026-10-31T20:00:00+08:00, end: 2026-11-11T00:00:00+08:00}
  burst:
    start: 2026-11-11T00:00:00+08:00
    end: 2026-11-12T00:00:00+08:00
  wrapup: {start: 2026-11-12T00:00:00+08:00, end: 2026-11-13T00:00:00+08:00}
targets:
  gmv: 1000000
skus:
  - {sku: A, name: Phone, safety_stock: 5, warning_level: 10}
"""


def test_valid_campaign():
    campaign = parse(CAMPAIGN, "c.yaml")
    assert campaign.id == "d11" and campaign.skus[0].warning_level == 10 and campaign.timezone == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("end: 2026-11-12T00:00:00+08:00", "end: 2026-11-10T00:00:00+08:00"),
            "c.yaml:6:5: phases.burst: end must be after start",
        ),
        (("gmv: 1000000", "gmv: -5"), "c.yaml:10:8: targets.gmv: Expected `float` >= 0.0"),
        (("warning_level: 10}", "warning_level: 10, colour: red}"), "c.yaml:12:71: skus[0].colour: unknown field"),
        (("id: d11", "id: d 11"), "c.yaml:1:5: id: must be 1-64 letters"),
        (("name: Double 11", "name: Double 11\nid: again"), "c.yaml:3:1: id: duplicate key"),
        (("name: Double 11", 'name: "a\\u0000b"'), "c.yaml:2:7: name: text must not contain NUL characters"),
        (("name: Double 11", 'name: "\\ud800"'), "c.yaml:2:7: name: text is not valid Unicode"),
        (("targets:", "targets: [oops"), "c.yaml:10:6: not valid YAML"),
        (
            ("end: 2026-11-11T00:00:00+08:00}", "end: 2026-11-11T01:00:00+08:00}"),
            "c.yaml:4:3: phases: phases must be in order and not overlap: preheat, then burst, then wrapup",
        ),
        (
            ("name: Double 11", "name: Double 11\ntimezone: Mars/Olympus"),
            "c.yaml:3:11: timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            ("name: Double 11", "name: Double 11\nbaseline: d11"),
            "c.yaml:3:11: baseline: a campaign cannot be its own baseline",
        ),
        (
            ("warning_level: 10}\n", "warning_level: 10}\n  - {sku: A, name: Case}\n"),
            "c.yaml:13:5: skus[1]: SKU 'A' is listed twice",
        ),
        (("name: Double 11", "name: ="), "c.yaml:2:7: name: not valid YAML: could not determine a constructor"),
        (("name: Double 11", "name: !!python/object:os.system x"), "c.yaml:2:7: name: not valid YAML"),
        (("name: Double 11", "name: Double 11\n? [a, b]\n: x"), "c.yaml:3:3: a key must be a plain value"),
    ],
)
def test_errors_name_the_line(change, expected):
    with pytest.raises(ConfigError) as caught:
        parse(CAMPAIGN.replace(*change), "c.yaml")
    assert str(caught.value).startswith(expected), str(caught.value)


def test_control_characters_the_yaml_reader_refuses():
    with pytest.raises(ConfigError) as caught:
        parse("id: x\x00", "c.yaml")
    assert "not valid YAML" in str(caught.value)


def test_yaml_aliases_are_refused_before_anything_is_built():
    assert len(ALIAS_BOMB) < 300
    with pytest.raises(ConfigError) as caught:
        parse(ALIAS_BOMB, "c.yaml")
    assert caught.value.line == 3 and caught.value.column == 8
    assert "alias" in caught.value.reason


def test_yaml_nested_too_deeply_is_an_error_with_its_line():
    with pytest.raises(ConfigError) as caught:
        parse("id: c-1\nname: " + "[" * 1000 + "]" * 1000 + "\n", "c.yaml")
    assert caught.value.line == 2 and "nest" in caught.value.reason
