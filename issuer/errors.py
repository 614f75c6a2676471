"""Typed domain errors. api.py turns each into problem+json with its stable code and status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a request; `field` is a JSON-pointer-like dotted path."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class PramaanError(Exception):
    """Base of every error the service expects and can explain to a client."""

    code = "error"
    status = 400
    title = "Request failed"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ConfigError(PramaanError):
    code = "config_invalid"
    status = 500
    title = "Service misconfigured"


class ValidationFailed(PramaanError):
    code = "validation_failed"
    status = 422
    title = "The request is not valid"

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or f"{len(errors)} field(s) are not valid")
        self.errors = list(errors)


class BadRequest(PramaanError):
    code = "bad_request"
    status = 400
    title = "Malformed request"


class InvalidJson(BadRequest):
    code = "invalid_json"


class UnsupportedMedia(PramaanError):
    code = "unsupported_media_type"
    status = 415
    title = "Unsupported media type"


class NotFound(PramaanError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(PramaanError):
    code = "conflict"
    status = 409
    title = "Conflict"


class DuplicateCertificate(Conflict):
    code = "duplicate_registration"
    title = "A current certificate already exists for this registration"


class InvalidTransition(Conflict):
    code = "invalid_state"
    title = "The certificate is not in a state that allows this"


class SampleNotSeen(Conflict):
    code = "sample_not_seen"
    title = "Approve a batch only after seeing a sample of its rendered rows"


class NotReady(Conflict):
    code = "not_issued"
    title = "The certificate is not issued yet"


class Unauthorized(PramaanError):
    code = "unauthorized"
    status = 401
    title = "Authentication required"


class Forbidden(PramaanError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class IssuanceFailed(PramaanError):
    code = "issuance_failed"
    status = 500
    title = "The certificate could not be issued"
