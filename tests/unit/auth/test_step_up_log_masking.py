"""The names the step-up and password routes use are masked by the log masker."""

from __future__ import annotations

from finbank_http.observability.masking import Masker
from finbank_http.routes.auth import STEP_UP_HEADER


def test_step_up_tokens_passwords_and_codes_never_reach_a_log() -> None:
    masker = Masker()
    values = {
        STEP_UP_HEADER.lower(): "tok-header-value",
        "step_up_token": "tok-body-value",
        "current_password": "old passphrase 1",
        "new_password": "new passphrase 2",
        "code": "123456",
    }
    masked = masker.mask_mapping(values)
    assert set(masked) == set(values)
    assert not set(values.values()) & set(masked.values())
    text = masker.mask_text("step_up_token=tok-query-value&new_password=hunter2hunter2")
    assert "tok-query-value" not in text
    assert "hunter2" not in text
