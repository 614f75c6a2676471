"""The canonical form of a request: what validation accepted, and nothing it ignored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def canonical_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """`request` with every null removed: an optional field sent as null is absent.

    Validation treats null as absent, so the stored request must too: new records are stored
    in this form, and records stored before it are read through it, so the template, the seal
    and the field digest never see a null."""
    return {k: _without_nulls(v) for k, v in request.items() if v is not None}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None]
    return value
