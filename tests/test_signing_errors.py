"""The typed signing errors keep what callers and reports read from them."""

from __future__ import annotations

import pytest

from signing.errors import SEAL_REASONS, SealError, SigningError


def test_signing_error_keeps_its_message_and_code() -> None:
    error = SigningError("the key file is unreadable", code="key_material_missing")
    assert (error.message, error.code, str(error)) == (
        "the key file is unreadable", "key_material_missing", "the key file is unreadable")
    assert SigningError("plain").code == SigningError.code


def test_seal_error_names_an_unknown_reason() -> None:
    with pytest.raises(ValueError, match="unknown seal error reason 'made_up'"):
        SealError("made_up")
    for reason in SEAL_REASONS:
        assert SealError(reason).reason == reason
