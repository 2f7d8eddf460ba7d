"""BR Code encode/parse throughput: finbank_core.pix against other Python libraries.

Run: ``.venv/bin/python benchmarks/brcode.py`` (about 15 s). Each library
builds the same static code (EVP key, name, city, amount, txid) from its
inputs, which is what an application calls, so "build+encode" includes our
validation. Libraries that are not installed are skipped. Each row is the
best of several timed batches (``time.perf_counter``), in operations per
second; the ratio is ours divided by theirs for the same operation.

Reading: ``parse`` is the strict ``BRCode.parse``; ``parse-tolerant`` is
``read_brcode`` (the payer's default) on the same canonical code; and
``parse-pasted`` is ``read_brcode`` on a code as people paste it (a trailing
newline, a lowercase CRC, an accented city), which takes the deviation path.
Other libraries' parsers get the same text for each row (starkbank-brcode,
the only one with a parser, cannot read the pasted code at all).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from finbank_core.pix import BRCode
from finbank_core.pix.codes.brcode_reader import read_brcode
from finbank_core.pix.codes.crc import crc16_hex
from finbank_core.shared.money import Money

KEY = "123e4567-e12b-12d1-a456-426655440000"
NAME, CITY, TXID, CENTS = "Fulano de Tal", "BRASILIA", "PEDIDO42", 1050
BATCHES, BATCH_SECONDS = 8, 0.15


def measure(runners: dict[tuple[str, str], Callable[[], object]]) -> dict[tuple[str, str], float]:
    """Best ops/s of each runner over ``BATCHES`` rounds of ~``BATCH_SECONDS`` batches.

    Rounds interleave the runners, so a burst of load on the machine slows
    ours and theirs alike instead of skewing one ratio.
    """
    sizes: dict[tuple[str, str], int] = {}
    for name, operation in runners.items():  # calibrate: calls per batch
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < 0.05:
            operation()
            count += 1
        sizes[name] = max(1, int(count * BATCH_SECONDS / 0.05))
    best = dict.fromkeys(runners, 0.0)
    for _ in range(BATCHES):
        for name, operation in runners.items():
            started = time.perf_counter()
            for _ in range(sizes[name]):
                operation()
            best[name] = max(best[name], sizes[name] / (time.perf_counter() - started))
    return best


def optional(module: str) -> Any:
    """The module, or None if that library is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


# Running this file puts benchmarks/ first on sys.path, where this very file
# would shadow starkbank-brcode's top-level package, also named "brcode".
sys.path[:] = [p for p in sys.path if not p.endswith("benchmarks")]


def pasted(text: str) -> str:
    """``text`` as copied from another bank's app: accented city, lowercase CRC, newline."""
    body = text[:-8].replace(f"60{len(CITY):02d}{CITY}", "6008BRASÍLIA") + "6304"
    return body + crc16_hex(body.encode()).lower() + "\n"


def ours() -> dict[str, Callable[[], object]]:
    code = BRCode.static(
        key=KEY, merchant_name=NAME, merchant_city=CITY, amount=Money(CENTS), txid=TXID
    )
    text = code.encode()
    copied = pasted(text)
    assert len(read_brcode(copied).deviations) == 3
    return {
        "build+encode": lambda: BRCode.static(
            key=KEY, merchant_name=NAME, merchant_city=CITY, amount=Money(CENTS), txid=TXID
        ).encode(),
        "encode": code.encode,
        "parse": lambda: BRCode.parse(text),
        "parse-tolerant": lambda: read_brcode(text),
        "parse-pasted": lambda: read_brcode(copied),
    }


def theirs() -> dict[str, dict[str, Callable[[], object]]]:
    found: dict[str, dict[str, Callable[[], object]]] = {}
    static, brcode_id = optional("brcode.static"), optional("brcode.utils.brcodeId")
    if static is not None and brcode_id is not None:
        spec = {"key": KEY, "name": NAME, "city": CITY, "txid": TXID, "amount": CENTS}
        text = static.fromJson(spec)
        # No parse-pasted row: starkbank-brcode refuses the pasted code (its CRC
        # check fails on the accented city), so there is nothing to compare.
        found["starkbank-brcode"] = {
            "build+encode": lambda: static.fromJson(spec),
            "parse": lambda: brcode_id.jsonFromBrcode(text),
            "parse-tolerant": lambda: brcode_id.jsonFromBrcode(text),
        }
    pix_utils = optional("pix_utils")
    if pix_utils is not None:
        amount = Decimal("10.50")
        found["pix-utils"] = {
            "build+encode": lambda: pix_utils.Code(KEY, NAME, CITY, amount, TXID),
        }
    pybrcode = optional("pybrcode.pix")
    if pybrcode is not None:
        found["pybrcode"] = {
            "build+encode": lambda: str(pybrcode.generate_simple_pix(NAME, KEY, CITY, 10.5, TXID)),
        }
    pypix = optional("pypix")
    if pypix is not None:

        def pypix_encode() -> str:
            pix = pypix.Pix()
            pix.set_pixkey(KEY)
            pix.set_merchant_name(NAME)
            pix.set_merchant_city(CITY)
            pix.set_amount(10.5)
            pix.set_txid(TXID)
            return str(pix)

        found["pypix"] = {"build+encode": pypix_encode}
    pixqrcode = optional("pixqrcode")
    if pixqrcode is not None:
        # Its EVP handling is broken (see the tests); a national phone works.
        found["pixqrcode"] = {
            "build+encode": lambda: pixqrcode.PixQrCode(
                NAME, "11987654321", CITY, "10.50", TXID
            ).generate_code(),
        }
    return found


def main() -> None:
    runners = {("finbank_core.pix", operation): run for operation, run in ours().items()}
    for library, runs in theirs().items():
        runners.update({(library, operation): run for operation, run in runs.items()})
    with contextlib.redirect_stdout(io.StringIO()):  # some libraries print as they go
        rates = measure(runners)
    print(f"{'implementation':<18} {'operation':<13} {'ops/s':>12}  ours/theirs")
    for (library, operation), rate in rates.items():
        mine = rates["finbank_core.pix", operation]
        ratio = "" if library == "finbank_core.pix" else f"{mine / rate:.1f}x"
        print(f"{library:<18} {operation:<13} {rate:>12,.0f}  {ratio:>11}")


if __name__ == "__main__":
    main()
