"""Request and response bodies in ``/openapi.json``, from the msgspec Structs the endpoints decode and encode.

FastAPI documents only pydantic models; every body this API reads or answers with is a msgspec Struct (or a list
of them). An endpoint declares its request body with ``request_body(...)`` (as ``openapi_extra``; it decodes it with
``app.api.payloads.read_struct``) and its answers with ``responses(...)`` in its route decorator: the body's
schema, as msgspec derives it, refers to ``#/components/schemas/<Struct>``; ``publish`` adds those
components to the document FastAPI builds. So the document is generated from the very classes that
encode the answers, and schemathesis checks the answers against it (``tests/test_schemathesis.py``).
Every failure has one body, ``ErrorBody`` (built by ``app.core.errors.error_body``), documented as each
operation's ``default`` answer (which also replaces FastAPI's own 422 shape, never sent here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from fastapi import FastAPI

REF_TEMPLATE = "#/components/schemas/{name}"
JSON = "application/json"

_published: list[Any] = []
"""Every type a route documents, in the order first declared: ``publish`` derives the components from them."""


class FieldProblem(msgspec.Struct):
    field: str
    message: str


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    """``code`` is machine-readable (``not_found``, ``rate_limited``…); ``field`` names the culprit when one does;
    ``details`` lists every invalid parameter of a request FastAPI refused."""

    status: int
    code: str
    message: str
    field: str | None
    details: list[FieldProblem] | None = None


class ErrorBody(msgspec.Struct):
    """What every refusal and failure answers (``app.core.errors.error_body``)."""

    error: ErrorDetail


def schema(*kinds: Any) -> dict[str, Any]:
    """The JSON schema of a body of one of ``kinds`` (Structs, lists of them…), its Structs by reference."""
    _published.extend(kind for kind in kinds if kind not in _published)
    found, _ = msgspec.json.schema_components(kinds, ref_template=REF_TEMPLATE)
    return found[0] if len(found) == 1 else {"anyOf": list(found)}


def response(*kinds: Any, description: str) -> dict[str, Any]:
    """One documented answer whose JSON body is one of ``kinds``."""
    return {"description": description, "content": {JSON: {"schema": schema(*kinds)}}}


def request_body(kind: Any, description: str) -> dict[str, Any]:
    """A route's ``openapi_extra``: its JSON request body, of ``kind`` (a Struct, documented by reference)."""
    return {"requestBody": {"required": True, "description": description, "content": {JSON: {"schema": schema(kind)}}}}


def responses(
    *kinds: Any, status: int = 200, description: str = "OK", errors: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses``: its success body, the error body for the statuses ``errors`` describes, and
    the error body as the ``default`` for any other status. No ``kinds``: the success has no body (204)."""
    documented: dict[int | str, dict[str, Any]] = {
        status: response(*kinds, description=description) if kinds else {"description": description}
    }
    for code, text in (errors or {}).items():
        documented[code] = response(ErrorBody, description=text)
    documented["default"] = response(ErrorBody, description="Refused or failed (see error.code)")
    return documented


def components(document: Mapping[str, Any]) -> dict[str, Any]:
    """The component schemas ``document`` refers to (and those they refer to): an app serving only some
    routers documents only their bodies."""
    _, known = msgspec.json.schema_components(_published, ref_template=REF_TEMPLATE)
    found: dict[str, Any] = {}
    waiting = _references(document)
    while waiting:
        name = waiting.pop()
        if name in known and name not in found:
            found[name] = known[name]
            waiting |= _references(known[name])
    return dict(sorted(found.items()))


def _references(node: Any) -> set[str]:
    """The names of the components a JSON schema (or a part of the document) refers to."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        found = {ref.rsplit("/", 1)[-1]} if isinstance(ref, str) else set()
        return found.union(*(_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(item) for item in node))
    return set()


def publish(app: FastAPI, extra: Callable[[], Mapping[str, Any]] = dict) -> None:
    """Add the response components (and ``extra`` ones, e.g. the event schemas) to the app's OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        spec = app.openapi_schema
        if spec is None:
            spec = build()  # FastAPI keeps it as app.openapi_schema: completed once, served as is after
            found = spec.setdefault("components", {}).setdefault("schemas", {})
            found.update(components(spec["paths"]))
            found.update(extra())
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
