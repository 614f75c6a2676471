"""JSON Schema (2020-12) of a TypedDict, for the OpenAPI document's answers (api_schemas.py).

An answer built as a TypedDict is held to it by mypy (no key missing, none extra, each value of
its type); publishing the schema from the same TypedDict keeps the document from drifting from
the code. A TypedDict is a closed shape: additionalProperties false. `Annotated[T, Keywords(...)]`
adds keywords the type cannot say (a format, an enum of stable codes, a description).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin

Schema = dict[str, Any]
_SCALARS: dict[Any, str] = {str: "string", bool: "boolean", int: "integer", float: "number",
                            type(None): "null"}


class Keywords:
    """JSON Schema keywords for `Annotated[T, Keywords(format="date-time")]` (an object, not a
    dict: typing hashes the metadata of an Annotated inside a union)."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords


DATE_TIME = Keywords(format="date-time")


def schema_of(kind: Any) -> Schema:
    """The JSON Schema of `kind`: a TypedDict, a scalar, Literal, a union, list[T] or
    dict[str, T] (an open map), each possibly Annotated."""
    origin, args = get_origin(kind), get_args(kind)
    if origin is typing.Annotated:
        extra: Schema = {}
        for meta in kind.__metadata__:
            if isinstance(meta, Keywords):
                extra.update(meta.keywords)
        return {**schema_of(args[0]), **extra}
    if typing.is_typeddict(kind):
        return _object(kind)
    if kind is Any:  # any JSON value
        return {}
    if kind in _SCALARS:
        return {"type": _SCALARS[kind]}
    if origin is Literal:
        kinds = {_SCALARS[type(arg)] for arg in args}
        return {"type": kinds.pop(), "enum": list(args)} if len(kinds) == 1 else {
            "enum": list(args)}
    if origin in (Union, types.UnionType):
        return _union([schema_of(arg) for arg in args])
    if origin is list:
        return {"type": "array", "items": schema_of(args[0])}
    if origin is dict and args and args[0] is str:
        return {"type": "object", "additionalProperties": schema_of(args[1])}
    raise TypeError(f"no JSON Schema for {kind!r}")


def _object(kind: Any) -> Schema:
    hints = typing.get_type_hints(kind, include_extras=True)
    properties: Schema = {}
    required: list[str] = []
    for name, hint in hints.items():
        # Under `from __future__ import annotations` Python 3.11 counts NotRequired keys as
        # required (__required_keys__), so the markers are read here.
        needed = kind.__total__
        if get_origin(hint) in (NotRequired, Required):
            needed, hint = get_origin(hint) is Required, get_args(hint)[0]
        properties[name] = schema_of(hint)
        if needed:
            required.append(name)
    schema: Schema = {"type": "object", "properties": properties, "required": required,
                      "additionalProperties": False}
    if kind.__doc__:
        schema["description"] = " ".join(kind.__doc__.split())
    return schema


def _union(choices: list[Schema]) -> Schema:
    """`T | None` as T's schema with "null" among its types (and None in its enum); bare
    types as {"type": [...]}; anything else as anyOf."""
    others = [choice for choice in choices if choice != {"type": "null"}]
    if len(others) == 1 < len(choices) and isinstance(others[0].get("type"), str):
        nullable = {**others[0], "type": [others[0]["type"], "null"]}
        if "enum" in nullable:
            nullable["enum"] = [*nullable["enum"], None]
        return nullable
    if all(set(choice) == {"type"} for choice in choices):
        names: list[str] = []
        for choice in choices:
            more = choice["type"] if isinstance(choice["type"], list) else [choice["type"]]
            names += [name for name in more if name not in names]
        return {"type": names}
    return {"anyOf": choices}
