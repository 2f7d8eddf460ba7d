"""Transfer ids derived from idempotency keys stay bit-identical to ``uuid.uuid5``: a key a
client used before must still map to the transfer it created (or a retry moves money twice)."""

from __future__ import annotations

import pickle
import random
import uuid

import pytest

from finbank_core.accounts.use_cases import FINBANK_NAMESPACE, _uuid5, transfer_id_for
from finbank_core.shared.errors import InvalidInput

ALPHABET = "abcXYZ019-_.:/ \x1f\x00\t\u00e7\u00e3\u00e9\u4e2d\u0416\U0001f600\U00010348\ufeff"

KEY_ALPHABET = ALPHABET[:-1].replace("\x00", "")


def names(count: int) -> list[str]:
    rng = random.Random(16)  # fixed: the same inputs every run
    made = ["", "\x1f", "a" * 10_000, "internal\x1fana\x1fkey-1"]
    for _ in range(count):
        made.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 300))))
    return made


def test_the_fast_derivation_is_uuid5_bit_for_bit() -> None:
    for name in names(20_000):
        expected = uuid.uuid5(FINBANK_NAMESPACE, name)
        derived = _uuid5(name)
        assert derived.int == expected.int, repr(name)
        assert derived.bytes == expected.bytes
        assert str(derived) == str(expected)
        assert derived == expected
        assert hash(derived) == hash(expected)
        assert derived.version == 5
        assert derived.variant == uuid.RFC_4122
        assert derived.is_safe is expected.is_safe
        assert type(derived) is uuid.UUID


def test_transfer_ids_of_keys_used_before_are_unchanged() -> None:
    """Pinned values, computed with ``uuid.uuid5`` before the derivation changed."""
    assert transfer_id_for("internal", "ana", "key-1") == uuid.UUID(
        "ae363def-8295-507d-8c43-c2bb0495a890"
    )
    assert _uuid5("cash-in\x1fop\x1f\u00e7\u00e3o-\U0001f600") == uuid.UUID(
        "9caa8206-3b97-5035-91aa-9beaaf9c45b6"
    )
    rng = random.Random(7)
    for _ in range(500):
        scope = rng.choice(["internal", "deposit", "withdraw", "pix", ""])
        owner = f"user-{rng.randrange(10**9)}"
        # a NUL is refused in a key (no backend stores one as text): the others
        key = "".join(rng.choice(KEY_ALPHABET) for _ in range(rng.randint(1, 255)))
        assert transfer_id_for(scope, owner, key) == uuid.uuid5(
            FINBANK_NAMESPACE, f"{scope}\x1f{owner}\x1f{key}"
        )


def test_a_derived_id_behaves_as_any_uuid() -> None:
    derived = _uuid5("internal\x1fana\x1fkey-1")
    assert pickle.loads(pickle.dumps(derived)) == derived  # noqa: S301 (our own bytes)
    assert {derived: 1}[uuid.UUID(str(derived))] == 1
    with pytest.raises(TypeError):
        derived.int = 0  # type: ignore[misc]


def test_a_name_that_is_not_utf8_is_refused_as_uuid5_refuses_it() -> None:
    with pytest.raises(UnicodeEncodeError):
        uuid.uuid5(FINBANK_NAMESPACE, "\ud800")
    with pytest.raises(UnicodeEncodeError):
        _uuid5("\ud800")


def test_keys_are_still_checked_first() -> None:
    with pytest.raises(InvalidInput):
        transfer_id_for("internal", "ana", "")
    with pytest.raises(InvalidInput):
        transfer_id_for("internal", "ana", "k" * 256)
    # what no backend stores as text, in the key or the owner, before any UTF-8 encoding
    for key, owner in (("k\x00", "ana"), ("k\ud800", "ana"), ("k", "a\x00na"), ("k", "\udfff")):
        with pytest.raises(InvalidInput):
            transfer_id_for("internal", owner, key)
