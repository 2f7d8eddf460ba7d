"""The containers are the only place adapters are chosen and built.

Read from the source (no server needed): outside ``finbank_adapters.containers``
and the builder modules it calls, no module of ``src/`` constructs a class
of ``finbank_adapters`` (an adapter, a pool, a clock, an outbox, a runner...)
from another package, and no module picks one by ``isinstance``. The facade
and the HTTP layer name only providers that exist.

The import graph, read from every ``import`` of ``src/`` (those inside
functions too): imports only point inward (delivery -> ``finbank`` ->
``finbank_adapters`` -> ``finbank_core``), no adapter package imports the
composition root (the processes that build containers are in
``finbank.runtime`` and ``finbank.lambdas``), and no two packages of
``finbank_adapters`` import each other, however indirectly.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
from collections.abc import Collection, Iterator

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
    # `finbank doctor` reads the secret the same way, to check it before anything is built
    ("finbank_cli.doctor", "finbank_adapters.system.SystemClock"),
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
        "qr_renderer", "render_charge_qr", "rate_limit_store", "pix_stream_processor",
    }  # fmt: skip
    resolved = 0
    for name, provider in sub.providers.items():
        if name in skipped or name.startswith("_") or type(provider).__name__ == "Dependency":
            continue
        assert await resolve(provider()) is not None or name == "settle_inline", name
        resolved += 1
    assert resolved > 0


# -- the import graph ------------------------------------------------------------------

#: how far out each top-level package is; a module may import its own or a lower layer
LAYERS = {
    "finbank_core": 0,
    "finbank_adapters": 1,
    "finbank": 2,
    "finbank_http": 3,
    "finbank_cli": 4,
}

ImportGraph = dict[str, set[str]]


def all_modules() -> dict[str, pathlib.Path]:
    return {module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def imports_of(name: str, path: pathlib.Path, tree: ast.Module, known: Collection[str]) -> set[str]:
    """The modules of ``known`` that ``tree`` imports, anywhere in it (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else base)
    return {module for module in found if module in known and module != name}


def import_graph() -> ImportGraph:
    modules = all_modules()
    return {
        name: imports_of(name, path, ast.parse(path.read_text(encoding="utf-8")), modules)
        for name, path in modules.items()
    }


def adapter_package(module: str) -> str:
    """``finbank_adapters.<package or module>``: the unit a cycle is looked for between."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: ImportGraph) -> ImportGraph:
    packages: ImportGraph = {}
    for importer, imported in graph.items():
        if not importer.startswith("finbank_adapters."):
            continue
        for module in imported:
            if module.startswith("finbank_adapters.") and (
                adapter_package(module) != adapter_package(importer)
            ):
                packages.setdefault(adapter_package(importer), set()).add(adapter_package(module))
    return packages


def cycles(graph: ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def edges_within(graph: ImportGraph, component: Collection[str]) -> list[str]:
    return [
        f"{a} -> {b}" for a in sorted(component) for b in sorted(graph.get(a, ())) if b in component
    ]


def test_no_two_adapter_packages_import_each_other() -> None:
    graph = import_graph()
    packages = package_graph(graph)
    assert "finbank_adapters.containers" in packages  # the scan read the composition root
    found = cycles(packages)
    assert found == [], [edges_within(packages, component) for component in found]


def test_no_two_modules_import_each_other_however_indirectly() -> None:
    """Module by module, in every package (``finbank_http.deps`` and ``.security`` once did)."""
    graph = import_graph()
    assert len(graph) > 200
    found = cycles(graph)
    assert found == [], [edges_within(graph, component) for component in found]


def test_no_adapter_module_imports_the_composition_root() -> None:
    root = "finbank_adapters.containers"
    offenders = sorted(
        (importer, module)
        for importer, imported in import_graph().items()
        if importer.startswith("finbank_adapters.") and not importer.startswith(root)
        for module in imported
        if module == root or module.startswith(root + ".")
    )
    assert offenders == [], "resolve in finbank.runtime / finbank.lambdas instead"


def test_imports_only_point_inward() -> None:
    graph = import_graph()
    outward = sorted(
        f"{importer} -> {module}"
        for importer, imported in graph.items()
        for module in imported
        if LAYERS[module.split(".")[0]] > LAYERS[importer.split(".")[0]]
    )
    assert outward == []
    assert any(m.startswith("finbank_adapters.") for m in graph["finbank.runtime"])


def test_the_graph_checks_find_what_they_look_for() -> None:
    """The checks above on a made-up tree: a function-level import closing a loop is found."""
    known = {"finbank_adapters.containers", "finbank_adapters.kafka.relay", "finbank.runtime"}
    tree = ast.parse(
        "from finbank_adapters.kafka import relay\n"
        "def run():\n"
        "    from finbank_adapters.containers import build_container\n"
    )
    path = SRC / "finbank_adapters" / "workers" / "loop.py"
    assert imports_of("finbank_adapters.workers.loop", path, tree, known) == {
        "finbank_adapters.kafka.relay",
        "finbank_adapters.containers",
    }
    loop: ImportGraph = {
        "finbank_adapters.containers.events": {"finbank_adapters.kafka.relay"},
        "finbank_adapters.kafka.relay": {"finbank_adapters.containers"},
        "finbank_adapters.workers.x": {"finbank_adapters.kafka.relay"},
    }
    packages = package_graph(loop)
    assert cycles(packages) == [["finbank_adapters.containers", "finbank_adapters.kafka"]]
    assert edges_within(packages, cycles(packages)[0]) == [
        "finbank_adapters.containers -> finbank_adapters.kafka",
        "finbank_adapters.kafka -> finbank_adapters.containers",
    ]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []


async def test_the_processes_resolve_their_loops_from_the_containers() -> None:
    """``finbank.runtime`` builds no loop: the containers do, over their own use cases."""
    from finbank_adapters.workers.pix_automatic import PixAutomaticWorker, default_holder
    from finbank_core.pix.automatic.use_cases import RunDueDebits

    container = build_container(Settings())
    named = await resolve(container.workers.pix_automatic_worker(holder="host-a:1"))
    assert isinstance(named, PixAutomaticWorker)
    assert named.holder == "host-a:1"
    assert isinstance(named.run_due, RunDueDebits)
    unnamed = await resolve(container.workers.pix_automatic_worker())
    assert unnamed.holder == default_holder()
