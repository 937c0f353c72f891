"""Leaf updates of the wall's panels without a browser: a panel's tree is sent whole once, then only what changed,
node by node, and whole again only where its shape changed; a protocol-level screen follows the tile's value."""

from __future__ import annotations

import json

from dash import html

from bench.wall_subscribers import tile_text
from dashboard import leaves, panels
from dashboard.kpis import Tile


def _row(count: int, rate: str, width: float) -> html.Div:
    return html.Div(
        [html.Div("visit", className="stage-name"), html.Div(html.Div(style={"width": f"{width}%"})), str(rate)],
        className="funnel-row",
        **{"data-count": str(count)},
    )


def test_every_component_is_named_by_its_position_unless_it_has_an_id():
    tree = leaves.stamp([_row(1, "a", 10), html.Div("x", id="own")], "funnel-body")
    assert tree[0]["props"]["id"] == "funnel-body-0"
    assert [c["props"]["id"] for c in tree[0]["props"]["children"][:2]] == ["funnel-body-0-0", "funnel-body-0-1"]
    assert tree[0]["props"]["children"][1]["props"]["children"]["props"]["id"] == "funnel-body-0-1-0", "a lone child"
    assert tree[1]["props"]["id"] == "own"
    assert json.loads(json.dumps(tree)) == tree, "plain JSON, as set_props sends it"


def test_only_the_changed_props_go_out_node_by_node():
    before = leaves.stamp([_row(1, "a", 10)], "funnel-body")
    after = leaves.stamp([_row(2, "a", 12.5)], "funnel-body")
    assert leaves.changes("funnel-body", before, after) == [
        ("funnel-body-0", {"data-count": "2"}),
        ("funnel-body-0-1-0", {"style": {"width": "12.5%"}}),
    ]
    assert leaves.changes("funnel-body", after, leaves.stamp([_row(2, "a", 12.5)], "funnel-body")) == []
    assert leaves.changes("funnel-body", after, after) == []


def test_the_first_tree_and_a_changed_shape_go_out_whole_where_they_changed():
    one = leaves.stamp([_row(1, "a", 10)], "funnel-body")
    assert leaves.changes("funnel-body", None, one) == [("funnel-body", {"children": one})]
    two = leaves.stamp([_row(1, "a", 10), _row(1, "a", 10)], "funnel-body")
    assert leaves.changes("funnel-body", one, two) == [("funnel-body", {"children": two})], "a row more"
    text = leaves.stamp([_row(1, "b", 10)], "funnel-body")
    assert leaves.changes("funnel-body", one, text) == [
        ("funnel-body-0", {"children": text[0]["props"]["children"]})
    ], "a text beside components changed: that node's children"
    plain = leaves.stamp([html.Div("x", className="a")], "p")
    assert leaves.changes("p", plain, leaves.stamp([html.Div("x")], "p")) == [("p-0", {"className": None})]
    assert leaves.changes("p", plain, leaves.stamp([html.Span("x", className="a")], "p")) == [
        ("p", {"children": leaves.stamp([html.Span("x", className="a")], "p")})
    ]


def test_a_subscriber_reads_the_tile_from_the_whole_tiles_then_from_its_leaf():
    def tiles(orders: str) -> list[dict]:
        shown = [Tile("gmv_paid", "GMV", "¥1", "", None, "—"), Tile("orders_paid", "Orders", orders, "", None, "—")]
        return leaves.stamp(panels.kpi_tiles(shown), "kpi-tiles")

    def frame(*updates: tuple[str, dict]) -> str:
        return json.dumps([{"type": "set_props", "payload": {"componentId": c, "props": p}} for c, p in updates])

    first, second = tiles("1"), tiles("2")
    value_id, text = tile_text(frame(("kpi-tiles", {"children": first})), "orders_paid", None)
    assert (value_id, text) == ("kpi-tiles-1-1", "1")
    assert tile_text(frame(*leaves.changes("kpi-tiles", first, second)), "orders_paid", value_id) == (value_id, "2")
    assert tile_text(frame(("wall-clock", {"children": "00:00:01"})), "orders_paid", value_id) == (value_id, None)
