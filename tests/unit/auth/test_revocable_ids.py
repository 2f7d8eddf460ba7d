"""What ``Authenticate`` asks the denylist about: the token's id and its session's."""

from __future__ import annotations

import pytest

from finbank_core.auth.model import Principal
from finbank_core.auth.use_cases import revocable_ids


@pytest.mark.parametrize(
    ("token_id", "session_id", "expected"),
    [
        ("jti-1", "sid-1", ("jti-1", "sid-1")),
        ("jti-1", None, ("jti-1",)),
        ("jti-1", "", ("jti-1",)),
        (None, "sid-1", ("sid-1",)),
        ("", "sid-1", ("sid-1",)),
        (None, None, ()),
        ("", "", ()),
    ],
)
def test_the_ids_a_token_can_be_revoked_by_are_those_it_has_in_order(
    token_id: str | None, session_id: str | None, expected: tuple[str, ...]
) -> None:
    principal = Principal(subject="u", username="u", token_id=token_id, session_id=session_id)
    assert revocable_ids(principal) == expected
