"""YAML configuration files validated against typed schemas, with errors that name the line.

PyYAML composes the document into nodes that remember where they start;
msgspec converts the plain data into the target type and reports the failing
path (``$.phases.burst.start``); the path is mapped back to the node's line so
an operator reads ``campaigns/double11.yaml:14:12: phases.burst.start: ...``.
A check in a schema's ``__post_init__`` that concerns one of its fields says
so by starting its message with that field (``timezone: unknown time zone``,
``skus[3]: ...``), and the error then points at that field's line.

Aliases (``*name``) are refused while composing: a few hundred bytes of them
expand to millions of nodes (an alias bomb). Nesting is bounded too, so the
recursive composer never reaches Python's recursion limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import yaml

T = TypeVar("T")

MAX_DEPTH = 64
"""Levels of mappings and lists a configuration document may nest."""

PATTERN_MEANINGS: dict[str, str] = {
    r"^\d+(\.\d+)?(ms|s|m|h)$": "must be a duration such as 30s, 5m or 1h",
    r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$": (
        "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
    ),
    r"^[A-Z]{3}$": "must be a 3-letter ISO 4217 currency code in capitals, e.g. CNY",
    r"^[a-z][a-z0-9_]{0,63}$": "must be lower-case letters, digits and '_', starting with a letter",
}
"""Plain-language versions of the regex constraints used in configuration schemas."""

_PATTERN = re.compile(r"^Expected `str` matching regex '(?P<pattern>.*)'$")
_PATH = re.compile(r" - at (?:`key` in )?`\$(?P<path>[^`]*)`$")
"""Where a value failed; a mapping's key fails ``at `key` in `$.path```."""
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_NAMED_FIELD = re.compile(r"^(?P<field>[a-z_]+(?:\[\d+\])?): (?P<reason>.+)$", re.DOTALL)
"""A ``__post_init__`` message naming the field it is about."""
_UNKNOWN_OR_MISSING = re.compile(r"^Object (contains unknown|missing required) field `(?P<field>[^`]*)`")


class ConfigError(Exception):
    """A configuration file is invalid; ``str()`` gives ``file:line:column: field: reason``."""

    def __init__(self, source: str, line: int | None, column: int | None, field: str | None, reason: str) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.field = field
        self.reason = reason
        where = source if line is None else f"{source}:{line}:{column}"
        super().__init__(f"{where}: {field + ': ' if field else ''}{reason}")


@dataclass(frozen=True)
class _Located:
    """Plain data plus, for every path into it, the line and column where that value starts."""

    data: Any
    marks: dict[tuple[str | int, ...], tuple[int, int]]


def _construct(node: yaml.Node, path: tuple[str | int, ...], marks: dict, source: str) -> Any:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, path, source)
            if isinstance(key, (dict, list)):
                raise ConfigError(
                    source,
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                    _dotted(path) or None,
                    "a key must be a plain value, not a mapping or a list",
                )
            if isinstance(key, str):
                _check_text(key, key_node, path, source)
            if key in result:
                raise ConfigError(
                    source, key_node.start_mark.line + 1, key_node.start_mark.column + 1, str(key), "duplicate key"
                )
            marks[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _construct(value_node, (*path, key), marks, source)
            marks[(*path, key)] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), marks, source) for i, item in enumerate(node.value)]
    value = _scalar(node, path, source)
    if isinstance(value, str):
        _check_text(value, node, path, source)
    return value


def _scalar(node: yaml.Node, path: tuple[str | int, ...], source: str) -> Any:
    """A node's value as ``yaml.safe_load`` reads it; a tag it cannot construct (``=``, ``!!python/…``) is an
    error in the file at that node, not in the program."""
    try:
        return yaml.safe_load(yaml.serialize(node))
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            source,
            node.start_mark.line + 1,
            node.start_mark.column + 1,
            _dotted(path) or None,
            f"not valid YAML: {problem}",
        ) from None


def _check_text(value: str, node: yaml.Node, path: tuple[str | int, ...], source: str) -> None:
    """Text must be storable: no NUL characters, no lone UTF-16 surrogates (from JSON-style escapes)."""
    try:
        value.encode("utf-8")
        problem = "text must not contain NUL characters" if "\x00" in value else None
    except UnicodeEncodeError:
        problem = "text is not valid Unicode (a lone surrogate escape)"
    if problem:
        raise ConfigError(source, node.start_mark.line + 1, node.start_mark.column + 1, _dotted(path) or None, problem)


class _Composer(yaml.SafeLoader):
    """PyYAML's safe loader, composing without aliases and at most ``MAX_DEPTH`` levels deep."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self._source = source
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise self._error(event, f"YAML aliases (*{event.anchor}) are not accepted; write the value out")
        if self._depth >= MAX_DEPTH:
            raise self._error(event, f"nested deeper than {MAX_DEPTH} levels")
        self._depth += 1
        try:
            # types-PyYAML has ``index: int``; PyYAML passes the mapping key's node, or None.
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1

    def _error(self, event: yaml.Event, reason: str) -> ConfigError:
        mark = event.start_mark  # the parser marks every event; an event built by hand may have none
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        return ConfigError(self._source, line, column, None, reason)


def _compose(text: str, source: str) -> yaml.Node | None:
    loader = _Composer(text, source)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _load(text: str, source: str) -> _Located:
    try:
        node = _compose(text, source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ConfigError(source, line, column, None, f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:  # e.g. a control character the YAML reader refuses
        raise ConfigError(source, None, None, None, f"not valid YAML: {exc}") from None
    if node is None:
        raise ConfigError(source, 1, 1, None, "the file is empty")
    marks: dict[tuple[str | int, ...], tuple[int, int]] = {}
    return _Located(_construct(node, (), marks, source), marks)


def plain_reason(reason: str) -> str:
    """A msgspec "Expected `str` matching regex '…'" reason in plain language, when the pattern is known."""
    pattern = _PATTERN.match(reason)
    if pattern:
        regex = pattern["pattern"].encode().decode("unicode_escape")
        return PATTERN_MEANINGS.get(regex, reason)
    return reason


def _parse_path(text: str) -> tuple[str | int, ...]:
    return tuple(int(index) if index else name for name, index in _PATH_PART.findall(text))


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _error(exc: msgspec.ValidationError, located: _Located, source: str) -> ConfigError:
    message = str(exc)
    match = _PATH.search(message)
    path = _parse_path(match["path"]) if match else ()
    reason = message[: match.start()] if match else message
    special = _UNKNOWN_OR_MISSING.match(reason)
    if special:
        known = special[1] == "contains unknown"
        reason = "unknown field" if known else "required field is missing"
        if known:
            path = (*path, special["field"])
            line, column = located.marks.get(path, located.marks.get(path[:-1], (None, None)))
            return ConfigError(source, line, column, _dotted(path), reason)
        line, column = located.marks.get(path, (None, None))
        return ConfigError(source, line, column, _dotted((*path, special["field"])), reason)
    reason = plain_reason(reason)
    named = _NAMED_FIELD.match(reason)
    if named and (*path, *_parse_path("." + named["field"])) in located.marks:
        path, reason = (*path, *_parse_path("." + named["field"])), named["reason"]
    while path and path not in located.marks:
        path = path[:-1]
    line, column = located.marks.get(path, (None, None))
    return ConfigError(source, line, column, _dotted(path) or None, reason)


Marks = dict[tuple[str | int, ...], tuple[int, int]]
"""For each path into a document (``("route", "routes", 0, "receiver")``), the line and column of its value."""


def parse_located(text: str, schema: type[T], source: str = "<text>") -> tuple[T, Marks]:
    """Like ``parse``, also returning where each value starts, for checks made after conversion."""
    located = _load(text, source)
    try:
        return msgspec.convert(located.data, schema, strict=False), located.marks
    except msgspec.ValidationError as exc:
        raise _error(exc, located, source) from None


def error_at(source: str, marks: Marks, path: tuple[str | int, ...], reason: str) -> ConfigError:
    """A ConfigError for the value at ``path`` (or its nearest located parent)."""
    where = path
    while where and where not in marks:
        where = where[:-1]
    line, column = marks.get(where, (None, None))
    return ConfigError(source, line, column, _dotted(path) or None, reason)


def parse(text: str, schema: type[T], source: str = "<text>") -> T:
    """Parse YAML ``text`` into ``schema`` or raise ConfigError naming the line."""
    return parse_located(text, schema, source)[0]


def load(path: Path, schema: type[T]) -> T:
    """Read and parse one YAML file."""
    return parse(path.read_text(encoding="utf-8"), schema, str(path))
