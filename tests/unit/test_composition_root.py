"""The containers are the only place adapters are chosen and built.

Read from the source (no server needed): outside ``finbank_adapters.containers``
and the builder modules it calls, no module of ``src/`` constructs a class
of ``finbank_adapters`` (an adapter, a pool, a clock, an outbox, a runner...)
from another package, and no module picks one by ``isinstance``. The facade
and the HTTP layer name only providers that exist.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
from collections.abc import Iterator

import msgspec
import pytest

from finbank_adapters.containers import BankContainer, build_container, resolve
from finbank_adapters.settings import Settings

SRC = pathlib.Path(__file__).resolve().parents[2] / "src"

#: the composition root and the builders it calls (they construct, the containers choose)
BUILDERS = (
    "finbank_adapters.containers",
    "finbank_adapters.auth_wiring",
    "finbank_adapters.aws_wiring",
    "finbank_adapters.pix_wiring",
    "finbank_adapters.postgres_wiring",
)

#: constructions that are not a choice of adapter, with the reason
ALLOWED = {
    # settings are read before any container exists; the clock only dates the secret's cache
    ("finbank_adapters.aws.secrets", "finbank_adapters.system.SystemClock"),
    # the development stack of `finbank dev up` (containers of its own, not an adapter)
    ("finbank_http.cli", "finbank_adapters.devstack.DevStack"),
    ("finbank_cli.main", "finbank_adapters.devstack.DevStack"),
    ("finbank_cli.dev", "finbank_adapters.devstack.DevStack"),
}

#: fakes are passed in by the embedder (``open_bank(clock=FakeClock(...))``), never chosen
FAKES = {"FakeClock", "SequentialIdGenerator"}


def module_name(path: pathlib.Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def source_modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        name = module_name(path)
        if any(name == b or name.startswith(b + ".") for b in BUILDERS):
            continue
        yield name, ast.parse(path.read_text(encoding="utf-8"))


def is_adapter_class(obj: object) -> bool:
    if not inspect.isclass(obj) or not obj.__module__.startswith("finbank_adapters."):
        return False
    if issubclass(obj, (BaseException, msgspec.Struct)) or getattr(obj, "_is_protocol", False):
        return False
    return obj.__name__ not in FAKES


def imported_adapter_classes(tree: ast.Module) -> dict[str, type]:
    found: dict[str, type] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.module):
            continue
        if not node.module.startswith("finbank_adapters"):
            continue
        try:
            module = importlib.import_module(node.module)
        except ImportError:  # an optional extra that is not installed here
            continue
        for alias in node.names:
            obj = getattr(module, alias.name, None)
            if is_adapter_class(obj):
                found[alias.asname or alias.name] = obj  # type: ignore[assignment]
    return found


def owning_package(cls: type) -> str:
    """``finbank_adapters.<package>`` for an adapter in a subpackage, else its module."""
    parts = cls.__module__.split(".")
    package = ".".join(parts[:2])
    return package if (SRC / parts[0] / parts[1]).is_dir() else cls.__module__


def constructions() -> list[tuple[str, str]]:
    """(module, class) for every adapter class built outside its own package."""
    found = []
    for name, tree in source_modules():
        classes = imported_adapter_classes(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            cls = classes.get(node.func.id)
            if cls is None:
                continue
            owner = owning_package(cls)
            if name == owner or name.startswith(owner + "."):
                continue  # an adapter package building its own parts
            found.append((name, f"{cls.__module__}.{cls.__name__}"))
    return found


def test_nothing_outside_the_containers_constructs_an_adapter() -> None:
    violations = sorted(set(constructions()) - ALLOWED)
    assert violations == [], "build these in finbank_adapters.containers instead"


def test_the_scan_finds_a_construction_when_there_is_one() -> None:
    tree = ast.parse(
        "from finbank_adapters.postgres import PostgresOutbox\n"
        "from finbank_adapters.memory import FakeClock\n"
        "outbox = PostgresOutbox(pool, FakeClock())\n"
    )
    classes = imported_adapter_classes(tree)
    assert sorted(classes) == ["PostgresOutbox"]  # fakes are the embedder's to pass


def test_no_module_chooses_an_adapter_by_its_type() -> None:
    prefixes = ("InMemory", "Postgres", "Redis", "Dynamo", "Simulated", "Local", "S3")
    checked = set()
    for name, tree in source_modules():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "isinstance"
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Name)
                and node.args[1].id.startswith(prefixes)
            ):
                checked.add((name, node.args[1].id))
    assert checked == set()


def facade_references() -> set[tuple[str, str]]:
    """Every ``self._c.<provider>`` a facade in ``finbank/`` builds, with its context.

    A facade takes its context's container in ``__init__``
    (``self._c = container.pix()``); its methods name providers on it.
    """
    refs = set()
    for path in sorted((SRC / "finbank").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        context = None
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Attribute)
                and node.targets[0].attr == "_c"
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute)
            ):
                context = node.value.func.attr
        if context is None:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "_c"
            ):
                refs.add((context, node.attr))
    return refs


def test_every_provider_the_facade_names_exists() -> None:
    refs = facade_references()
    assert len(refs) > 30
    container = BankContainer()
    missing = [
        (context, name)
        for context, name in sorted(refs)
        if name not in getattr(container, context).providers
    ]
    assert missing == []


@pytest.mark.parametrize(
    "context", ["infra", "events", "accounts", "auth", "pix", "reconciliation", "workers"]
)
async def test_every_use_case_of_the_memory_profile_resolves(context: str) -> None:
    container = build_container(Settings())
    sub = getattr(container, context)
    skipped = {
        # resources and per-process providers that need a server or a call argument
        "postgres_pool", "redis_client", "cognito_client", "dynamodb_client", "s3_client",
        "kafka", "kafka_producer", "outbox", "relay", "inbox", "effect_log",
        "pix_settlement_handler", "pix_settlement_runner", "report_sink", "reconcile_day",
        "qr_renderer", "render_charge_qr", "rate_limit_store",
    }  # fmt: skip
    resolved = 0
    for name, provider in sub.providers.items():
        if name in skipped or name.startswith("_") or type(provider).__name__ == "Dependency":
            continue
        assert await resolve(provider()) is not None or name == "settle_inline", name
        resolved += 1
    assert resolved > 0
