"""CRC-16/CCITT-FALSE against its check value and a bit-by-bit reference."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from finbank_core.pix import crc16_ccitt_false, crc16_hex


def _reference_crc(data: bytes) -> int:
    """The textbook definition: poly 0x1021, init 0xFFFF, MSB first, no xorout."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def test_check_value_of_123456789_is_29b1() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_hex(b"123456789") == "29B1"


def test_empty_input_gives_the_initial_value() -> None:
    assert crc16_ccitt_false(b"") == 0xFFFF


def test_hex_form_is_zero_padded_uppercase() -> None:
    # A payload whose CRC is below 0x1000: the bug of several libraries.
    data = next(
        f"x{i}".encode() for i in range(100_000) if crc16_ccitt_false(f"x{i}".encode()) < 0x100
    )
    text = crc16_hex(data)
    assert len(text) == 4
    assert text.startswith("00")
    assert text == text.upper()


@given(st.binary(max_size=600))
def test_agrees_with_bitwise_reference(data: bytes) -> None:
    assert crc16_ccitt_false(data) == _reference_crc(data)
