"""The body of POST /api/v1/verify: checked by these objects, published from them
(api_openapi.py)."""

from __future__ import annotations

from typing import Final

from issuer.plain_fields import Chars, Fields

MAX_QR: Final = 7089
"""The most characters any QR code holds (version 40, digits only): a longer text was not
scanned. Ours are our verify link, '#' and at most signing.seal.MAX_DIGITS digits."""

QR = Chars("qr", 1, MAX_QR, ("required", "the scanned QR text"),
           long=("too_long", f"at most {MAX_QR} characters: more than any QR code holds"),
           not_blank=True, description="The text of a certificate's QR code, as scanned")
VERIFY_BODY = Fields((QR,), closed=False)  # other keys are ignored
