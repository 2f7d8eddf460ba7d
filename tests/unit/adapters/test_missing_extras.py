"""Importing an adapter package without its pip extra gives one clear error.

Each import runs in a child interpreter whose extra's modules are refused by a
``sys.meta_path`` blocker (tests/extras_support.py): the error is
``MissingExtra`` (an ``ImportError``) whose one-line message names the package,
the extra and the pip command, and nothing of the driver was imported.
"""

from __future__ import annotations

import pytest
from tests.extras_support import ALL_EXTRAS, run_without

from finbank_adapters._extras import MissingExtra, pip_command, require_extra

PROBE = """
import importlib, sys
from finbank_adapters._extras import MissingExtra
try:
    importlib.import_module({module!r})
except MissingExtra as exc:
    assert isinstance(exc, ImportError)
    print("MISSING", exc.extras, exc.pip)
    print(str(exc))
    sys.exit(0)
print("IMPORTED")
sys.exit(1)
"""

# (module imported, extra blocked, the package the message names)
CASES = [
    ("finbank_adapters.postgres", "postgres", "finbank_adapters.postgres"),
    ("finbank_adapters.postgres.migrations", "postgres", "finbank_adapters.postgres"),
    ("finbank_adapters.redis", "redis", "finbank_adapters.redis"),
    ("finbank_adapters.kafka", "kafka", "finbank_adapters.kafka"),
    ("finbank_adapters.kafka.relay", "kafka", "finbank_adapters.kafka"),
    ("finbank_adapters.aws", "aws", "finbank_adapters.aws"),
    ("finbank_adapters.aws.dynamo_pix_directory", "aws", "finbank_adapters.aws"),
    ("finbank_adapters.files.s3", "aws", "finbank_adapters.files.s3"),
    ("finbank_adapters.qr", "http", "finbank_adapters.qr"),
    ("finbank_http", "http", "finbank_http"),
    ("finbank_http.app", "http", "finbank_http"),
]


@pytest.mark.parametrize(("module", "extra", "package"), CASES)
def test_importing_an_adapter_without_its_extra_names_the_extra(
    module: str, extra: str, package: str
) -> None:
    result = run_without([extra], PROBE.format(module=module))
    assert result.returncode == 0, result.stdout + result.stderr
    first, message = result.stdout.splitlines()[:2]
    assert first == f"MISSING ('{extra}',) pip install 'finbank[{extra}]'"
    assert message.startswith(f"{package} needs the '{extra}' extra (")
    assert message.endswith(f"not installed): pip install 'finbank[{extra}]'")


@pytest.mark.parametrize(("module", "extra", "package"), CASES)
def test_the_same_import_works_with_only_that_extra_installed(
    module: str, extra: str, package: str
) -> None:
    result = run_without(
        [e for e in ALL_EXTRAS if e != extra],
        f"import importlib\nimportlib.import_module({module!r})\nprint('IMPORTED')",
    )
    assert result.stdout.strip() == "IMPORTED", result.stderr


def test_the_core_and_the_memory_profile_need_no_extra() -> None:
    result = run_without(
        ALL_EXTRAS,
        "import finbank_core, finbank_adapters.memory, finbank_adapters.containers, finbank\n"
        "from finbank_adapters.settings import Settings\n"
        "print('IMPORTED')",
    )
    assert result.stdout.strip() == "IMPORTED", result.stderr


def test_missing_extra_message_and_fields() -> None:
    error = MissingExtra("finbank relay", ["postgres", "kafka"], ["aiokafka", "asyncpg"])
    assert isinstance(error, ImportError)
    assert isinstance(error, ModuleNotFoundError)
    assert error.extras == ("kafka", "postgres")
    assert error.name == "aiokafka"
    assert str(error) == (
        "finbank relay needs the 'kafka' and 'postgres' extras (aiokafka, asyncpg are not "
        "installed): pip install 'finbank[kafka,postgres]'"
    )
    assert pip_command(["http", "http"]) == "pip install 'finbank[http]'"


def test_require_extra_passes_when_the_modules_are_there() -> None:
    require_extra("a test", "postgres")  # the dev install has every extra
    with pytest.raises(MissingExtra, match=r"pip install 'finbank\[kafka\]'"):
        require_extra("a test", "kafka", ["finbank_no_such_module"])
