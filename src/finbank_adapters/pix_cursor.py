"""The key that seals the cursors of PIX payment listings (``ListPixPayments``).

``FINBANK_PIX_CURSOR_SECRET`` when set; otherwise a key derived from the
JWT secret (HMAC with a label of its own, so the cursor key reveals nothing
about the signing key), so every process of one deployment agrees; with
neither (the memory profile, or Cognito without a cursor secret), a random
key per process: cursors then stop working when the process restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from finbank_adapters.settings import Settings

_PROCESS_KEY = secrets.token_bytes(32)
_LABEL = b"finbank pix payments cursor v1"


def pix_cursor_key(settings: Settings) -> bytes:
    if settings.pix.cursor_secret:
        return hashlib.sha256(_LABEL + b"\x1f" + settings.pix.cursor_secret.encode()).digest()
    if settings.jwt.secret:
        return hmac.new(settings.jwt.secret.encode(), _LABEL, hashlib.sha256).digest()
    return _PROCESS_KEY
