"""Leaf updates of a panel: what changed between two renderings of its component tree, as ``set_props`` per node.

Dash's renderer pays for a ``set_props`` of a whole tree as ``children`` twice over: every component in the new
tree is rendered afresh, and each of them dispatches a store action of its own once mounted, which every
component on the page then re-reads (hundreds of components, hundreds of actions: tens of milliseconds of a
wall's main thread per push). A ``set_props`` of one node's own props costs three actions and renders only that
node. So a panel's tree is sent whole once (and when its shape changes), its components named by their position
(``stamp``); from then on only the props that changed are sent, node by node (``changes``). A node whose children
changed shape (a row more, another component in a slot) gets its children whole; nothing else does.

Pure: component trees in, plain JSON-ready trees and updates out.
"""

from __future__ import annotations

from typing import Any

from dash.development.base_component import Component

CHILDREN = "children"

Update = tuple[str, dict[str, Any]]
"""A component id and the props to set on it."""


def stamp(tree: Any, prefix: str) -> Any:
    """Children ``tree`` (components, lists, strings, numbers, None) as plain dicts, every component without an id
    given one from its position under ``prefix`` (``funnel-body-2-1``: the second child of the third row; a lone
    child is ``-0``), so an update can name it."""
    if isinstance(tree, list | tuple):
        return [_stamp_node(child, f"{prefix}-{index}") for index, child in enumerate(tree)]
    return _stamp_node(tree, f"{prefix}-0")


def _stamp_node(node: Any, name: str) -> Any:
    if not isinstance(node, Component):
        return node
    plain = node.to_plotly_json()
    props = dict(plain["props"])
    props.setdefault("id", name)
    if CHILDREN in props:
        props[CHILDREN] = stamp(props[CHILDREN], props["id"])
    return {"type": plain["type"], "namespace": plain["namespace"], "props": props}


def _is_node(value: Any) -> bool:
    return isinstance(value, dict) and "props" in value


def _node(old: dict[str, Any], new: dict[str, Any], out: list[Update]) -> bool:
    """Append the updates turning ``old`` into ``new`` in place; False when it cannot be (another component)."""
    before, after = old["props"], new["props"]
    if old["type"] != new["type"] or old["namespace"] != new["namespace"] or before.get("id") != after.get("id"):
        return False
    props = {key: value for key, value in after.items() if key != CHILDREN and before.get(key) != value}
    props.update({key: None for key in before.keys() - after.keys() if key != CHILDREN})
    nested: list[Update] = []
    if not _children(before.get(CHILDREN), after.get(CHILDREN), nested):
        props[CHILDREN] = after.get(CHILDREN)
        nested = []
    if props:
        out.append((after["id"], props))
    out.extend(nested)
    return True


def _children(old: Any, new: Any, out: list[Update]) -> bool:
    """Append the updates of nodes inside ``old`` children to match ``new``; False when the children must be sent
    whole (a different count, a component where there was text, a changed text beside components)."""
    if _is_node(old) and _is_node(new):
        return _node(old, new, out)
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return False
        for before, after in zip(old, new, strict=True):
            if _is_node(before) != _is_node(after):
                return False
            if _is_node(after):
                if not _node(before, after, out):
                    return False
            elif before != after:
                return False
        return True
    return not _is_node(old) and not _is_node(new) and not isinstance(old, list) and old == new


def changes(container: str, old: Any, new: Any) -> list[Update]:
    """The ``set_props`` turning the page's ``old`` children of ``container`` (stamped; None when it has none yet)
    into ``new``: none when they are equal, the children whole when their shape changed, else leaf by leaf."""
    if old is new:
        return []
    out: list[Update] = []
    if old is None or not _children(old, new, out):
        return [(container, {CHILDREN: new})]
    return out
