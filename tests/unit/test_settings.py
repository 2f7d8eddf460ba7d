"""Settings: every documented variable is honoured, nothing unknown or malformed gets by.

The documented variables are parsed out of the docs (``docs/**/*.md`` and the
README) and must be exactly the variables :meth:`Settings.variables` reads, so a
setting added without documentation (or a documented one nobody reads) fails here.
"""

from __future__ import annotations

import enum
import re
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest

from finbank_adapters.containers import build_container
from finbank_adapters.pix_wiring import limit_policy
from finbank_adapters.settings import (
    EXTERNAL_VARIABLES,
    PROFILE_BACKENDS,
    Backends,
    CognitoOptions,
    JwtOptions,
    KafkaOptions,
    PixNetworkBackend,
    PostgresOptions,
    Profile,
    RedisOptions,
    Settings,
    SettingsError,
    Variable,
)

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"FINBANK_[A-Z0-9_]+")
#: ``FINBANK_*`` names in the code that are not environment variables
NOT_VARIABLES = frozenset({"FINBANK_NAMESPACE"})  # a uuid5 namespace constant in the core
VARIABLES = Settings.variables()
BACKENDS = [v for v in VARIABLES.values() if v.area == "backends"]


def names_in(text: str) -> set[str]:
    # "FINBANK_<PORT>_BACKEND" and "FINBANK_TEST_*" leave a prefix ending in "_": not a name
    return {name for name in NAME.findall(text) if not name.endswith("_")}


def is_external(name: str) -> bool:
    return name in EXTERNAL_VARIABLES or name.startswith("FINBANK_TEST_")


def documented() -> set[str]:
    pages = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
    found: set[str] = set()
    for page in pages:
        found |= names_in(page.read_text(encoding="utf-8"))
    return {name for name in found if not is_external(name)} - {"FINBANK_PROFILE"}


def test_the_documented_variables_are_exactly_the_settings_variables() -> None:
    docs = documented()
    assert sorted(docs - VARIABLES.keys()) == [], "documented, but no setting reads it"
    assert sorted(VARIABLES.keys() - docs) == [], "a setting without documentation"


def test_the_configuration_page_has_a_row_per_variable_naming_its_setting() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip(" `"): line for line in page.splitlines() if "| `FINBANK_" in line
    }
    for name, variable in VARIABLES.items():
        assert name in rows, f"{name} has no row in docs/configuration.md"
        assert f"`{variable.area}.{variable.field}`" in rows[name]
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "configuration.md" in nav


def test_every_finbank_variable_used_anywhere_in_the_repository_is_known() -> None:
    """Terraform, the image, CI, scripts and tests may only set variables that
    ``from_env`` accepts (or that another part reads), or a process would refuse to start."""
    roots = ["src", "tests", "deploy", "docs", "benchmarks", "examples", "tools", ".ci", ".github"]
    files = [ROOT / name for name in ("Dockerfile", "README.md", "pyproject.toml", "Makefile")]
    for name in roots:
        if (ROOT / name).is_dir():
            files += [p for p in (ROOT / name).rglob("*") if p.is_file()]
    seen: dict[str, Path] = {}
    for path in files:
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in {".pyc", ".zip"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for name in names_in(text):
            seen.setdefault(name, path)
    known = VARIABLES.keys() | {"FINBANK_PROFILE"} | NOT_VARIABLES
    unknown = {
        name: str(path.relative_to(ROOT))
        for name, path in seen.items()
        if name not in known and not is_external(name)
    }
    # this file's own examples of refused names
    unknown = {
        name: where for name, where in unknown.items() if not where.endswith(Path(__file__).name)
    }
    assert unknown == {}


def base_type(kind: Any) -> Any:
    if typing.get_origin(kind) is typing.Annotated:
        return typing.get_args(kind)[0]
    return kind


def other_value(variable: Variable, current: Any) -> tuple[str, Any]:
    """A text for the variable and the value it must give, different from ``current``."""
    kind = base_type(variable.type)
    if isinstance(kind, type) and issubclass(kind, enum.StrEnum):
        choices = [choice for choice in kind if choice != current] or list(kind)
        return choices[-1].value, choices[-1]
    if kind is bool:
        return ("false", False) if current else ("true", True)
    if kind == bool | None:
        return ("false", False) if current else ("true", True)
    if kind is int:
        return str(current + 7), current + 7
    if kind is float:
        return str(current + 1.5), current + 1.5
    assert kind is str, f"{variable.name}: add a value for type {kind}"
    text = f"set-{variable.name.lower()}"
    for meta in typing.get_args(variable.type)[1:]:  # a str with a pattern: a text it takes
        if isinstance(meta, msgspec.Meta) and meta.pattern is not None:
            pattern = meta.pattern
            schemes = [s for s in ("postgresql", "redis") if re.match(pattern, f"{s}://")]
            assert schemes, f"{variable.name}: add a scheme matching {pattern}"
            text = f"{schemes[0]}://{text}"
    return text, text


@pytest.mark.parametrize("profile", list(Profile))
def test_every_documented_variable_set_to_a_non_default_value_is_honoured(
    profile: Profile,
) -> None:
    defaults = Settings.from_env({"FINBANK_PROFILE": profile.value})
    env = {"FINBANK_PROFILE": profile.value}
    expected: dict[str, Any] = {}
    for name in sorted(documented()):
        env[name], expected[name] = other_value(VARIABLES[name], defaults.value_of(name))

    settings = Settings.from_env(env)

    assert settings.profile is profile
    for name, value in expected.items():
        assert settings.value_of(name) == value, name
        variable = VARIABLES[name]
        assert getattr(getattr(settings, variable.area), variable.field) == value
        if name != "FINBANK_PIX_NETWORK_BACKEND":  # one choice only (sandbox): nothing else to set
            assert settings.value_of(name) != defaults.value_of(name), f"{name} kept its default"


def test_the_files_backend_is_read_from_the_environment() -> None:
    # FINBANK_FILES_BACKEND used to be ignored: the Batch job could not select S3
    settings = Settings.from_env(
        {"FINBANK_PROFILE": "aws", "FINBANK_FILES_BACKEND": "s3", "FINBANK_FILES_S3_BUCKET": "b"}
    )
    assert settings.backends.files == "s3"
    assert settings.files.s3_bucket == "b"
    assert Settings.from_env({"FINBANK_FILES_BACKEND": "memory"}).backends.files == "memory"
    assert Settings.from_env({}).backends.files == "local"


def test_the_payment_network_is_a_backend_and_sandbox_is_the_only_one() -> None:
    settings = Settings.from_env({"FINBANK_PIX_NETWORK_BACKEND": "sandbox"})
    assert settings.backends.pix_network is PixNetworkBackend.SANDBOX
    with pytest.raises(SettingsError, match="FINBANK_PIX_NETWORK_BACKEND must be one of sandbox"):
        Settings.from_env({"FINBANK_PIX_NETWORK_BACKEND": "spi"})


@pytest.mark.parametrize("variable", BACKENDS, ids=lambda v: v.name)
def test_each_backend_value_is_accepted_and_an_unknown_one_refused_naming_the_valid_ones(
    variable: Variable,
) -> None:
    choices = list(base_type(variable.type))
    for choice in choices:
        settings = Settings.from_env({variable.name: choice.value})
        assert getattr(settings.backends, variable.field) is choice
        # the value is a member of the port's enum, equal to its text
        assert settings.value_of(variable.name) == choice.value
    for bad in ("nonsense", "", "MEMORY-ish"):
        with pytest.raises(SettingsError) as raised:
            Settings.from_env({variable.name: bad})
        message = str(raised.value)
        assert variable.name in message
        assert f"must be one of {', '.join(c.value for c in choices)}" in message


def test_each_profile_presets_its_backends_and_a_variable_overrides_one_port() -> None:
    for profile in Profile:
        assert (
            Settings.from_env({"FINBANK_PROFILE": profile.value}).backends
            == (PROFILE_BACKENDS[profile])
        )
    local = Settings.from_env({"FINBANK_PROFILE": "local", "FINBANK_LEDGER_BACKEND": "memory"})
    assert local.backends == msgspec.structs.replace(
        PROFILE_BACKENDS[Profile.LOCAL], ledger="memory"
    )
    assert Settings().backends == Backends() == PROFILE_BACKENDS[Profile.MEMORY]


def test_an_unknown_profile_is_refused_naming_the_profiles() -> None:
    with pytest.raises(SettingsError, match=r"FINBANK_PROFILE must be one of memory, local, aws"):
        Settings.from_env({"FINBANK_PROFILE": "production"})


def test_an_unknown_finbank_variable_is_refused_with_a_did_you_mean() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"FINBANK_LEDGR_BACKEND": "postgres"})
    assert "unknown setting FINBANK_LEDGR_BACKEND" in str(raised.value)
    assert "did you mean FINBANK_LEDGER_BACKEND?" in str(raised.value)

    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"FINBANK_POSTGRES_URL": "postgresql://x", "FINBANK_WHATEVER": "1"})
    message = str(raised.value)
    assert "FINBANK_POSTGRES_URL" in message
    assert "FINBANK_WHATEVER" in message
    assert "postgresql://x" not in message  # an unknown variable's value is never echoed

    # the old flat field names are not variables either
    with pytest.raises(SettingsError, match="did you mean FINBANK_PIX_BACKEND"):
        Settings.from_env({"FINBANK_PIX_BACKENDS": "memory"})


def test_variables_of_other_tools_and_unrelated_ones_are_let_through() -> None:
    env = dict.fromkeys(EXTERNAL_VARIABLES, "1")
    env |= {"FINBANK_TEST_POSTGRES_DSN": "postgresql://t", "PATH": "/bin", "AWS_REGION": "x"}
    assert Settings.from_env(env) == Settings.from_env({})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("FINBANK_POSTGRES_POOL_MAX", "many"),
        ("FINBANK_POSTGRES_POOL_MAX", "0"),
        ("FINBANK_POSTGRES_POOL_MIN", "-1"),
        ("FINBANK_RELAY_LEASE_SECONDS", "-0.5"),
        ("FINBANK_RELAY_BATCH_SIZE", "1.5"),
        ("FINBANK_SANDBOX", "perhaps"),
        ("FINBANK_LOCKOUT_EXPONENTIAL", "yes please"),
        ("FINBANK_KAFKA_IDEMPOTENT_PRODUCER", "sometimes"),
        ("FINBANK_AUTH_RATE_LIMIT_PER_MINUTE", "s3cret-looking"),
        # what the drivers would refuse with a traceback of their own, later
        ("FINBANK_POSTGRES_DSN", "user:s3cret@db.internal:5432/finbank"),
        ("FINBANK_POSTGRES_DSN", "mysql://user:s3cret@db.internal/finbank"),
        ("FINBANK_REDIS_URL", "cache.internal:6379"),
        ("FINBANK_REDIS_URL", "http://:s3cret@cache.internal:6379/0"),
        ("FINBANK_REDIS_TIMEOUT_SECONDS", "-0.25"),
        ("FINBANK_METRICS_PORT", "70000"),  # not a port: the listener failed at start
        ("FINBANK_HTTP_METRICS_PORT", "65536"),
    ],
)
def test_a_malformed_value_is_refused_naming_the_variable_not_the_value(
    name: str, raw: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: raw})
    message = str(raised.value)
    assert name in message
    assert "invalid setting" in message
    assert raw not in message


def test_booleans_take_true_false_one_zero_in_any_case() -> None:
    for raw, value in (("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False)):
        assert Settings.from_env({"FINBANK_LOCKOUT_EXPONENTIAL": raw}).auth.lockout_exponential is (
            value
        )


def test_profile_dependent_defaults_follow_the_profile_unless_set() -> None:
    memory = Settings.from_env({})
    assert memory.pix.sandbox
    assert memory.pix.inline_settlement
    local = Settings.from_env({"FINBANK_PROFILE": "local"})
    assert not local.pix.sandbox
    assert not local.pix.inline_settlement
    forced = Settings.from_env({"FINBANK_PROFILE": "local", "FINBANK_SANDBOX": "true"})
    assert forced.pix.sandbox
    assert not forced.pix.inline_settlement


@pytest.mark.parametrize(
    ("env", "capped"),
    [
        ({}, False),
        ({"FINBANK_PROFILE": "local"}, False),
        ({"FINBANK_PROFILE": "aws"}, True),
        ({"FINBANK_PROFILE": "aws", "FINBANK_PIX_UNNAMED_DEVICE_IS_NEW": "false"}, False),
        ({"FINBANK_PROFILE": "local", "FINBANK_PIX_UNNAMED_DEVICE_IS_NEW": "1"}, True),
        (
            {
                "FINBANK_PROFILE": "aws",
                "FINBANK_PIX_LIMITS_JSON": '{"new_device_per_transaction": 15000}',
            },
            True,
        ),
    ],
)
def test_a_payment_naming_no_device_is_capped_on_aws_unless_set(
    env: dict[str, str], capped: bool
) -> None:
    settings = Settings.from_env(env)
    policy = limit_policy(settings)

    assert settings.pix.unnamed_device_is_new is capped
    assert policy.settings.unnamed_device_is_new is capped
    if "FINBANK_PIX_LIMITS_JSON" in env:  # the JSON's figures are kept
        assert policy.settings.new_device_per_transaction == 150_00


def test_the_limits_json_may_not_set_what_its_own_variable_does() -> None:
    settings = Settings.from_env({"FINBANK_PIX_LIMITS_JSON": '{"unnamed_device_is_new": true}'})
    with pytest.raises(SettingsError, match="FINBANK_PIX_UNNAMED_DEVICE_IS_NEW"):
        limit_policy(settings)


def test_replace_variables_applies_environment_texts_and_refuses_unknown_names() -> None:
    settings = Settings().replace_variables(
        {"FINBANK_POSTGRES_DSN": "postgresql://db/x", "FINBANK_RELAY_BATCH_SIZE": "9"}
    )
    assert settings.postgres.dsn == "postgresql://db/x"
    assert settings.relay.batch_size == 9
    assert settings.redis == RedisOptions()
    with pytest.raises(SettingsError, match="unknown setting FINBANK_NOPE"):
        Settings().replace_variables({"FINBANK_NOPE": "1"})
    with pytest.raises(SettingsError, match="invalid setting FINBANK_RELAY_BATCH_SIZE"):
        Settings().replace_variables({"FINBANK_RELAY_BATCH_SIZE": "x"})


def test_repr_masks_every_secret_dsn_and_url_in_every_area() -> None:
    settings = Settings(
        postgres=PostgresOptions(dsn="postgresql://app:pg-pass@db/finbank"),
        redis=RedisOptions(url="rediss://:redis-pass@cache:6379/0"),
        kafka=KafkaOptions(sasl_password="kafka-pass", sasl_username="relay"),
        jwt=JwtOptions(secret="jwt-pass"),
        cognito=CognitoOptions(
            client_secret="cognito-pass", jwks_url="https://jwks.example/cognito-url"
        ),
    )
    text = repr(settings)
    for secret in (
        "pg-pass",
        "redis-pass",
        "kafka-pass",
        "jwt-pass",
        "cognito-pass",
        "cognito-url",
    ):
        assert secret not in text
    assert "dsn='***'" in text
    assert "sasl_password='***'" in text
    assert "secret='***'" in text
    assert "sasl_username='relay'" in text  # only secrets are hidden
    assert str(settings) == text
    # an unset secret shows as empty, so a missing one is visible
    assert "client_secret=''" in repr(Settings())


async def test_the_reconciliation_job_opens_the_file_store_the_environment_names(
    tmp_path: Path,
) -> None:
    from finbank.runtime import open_file_store
    from finbank_adapters.files.local import LocalFileStore
    from finbank_adapters.files.memory import InMemoryFileStore

    memory = Settings.from_env({"FINBANK_FILES_BACKEND": "memory"})
    async with open_file_store(memory) as store:
        assert isinstance(store, InMemoryFileStore)
    local = Settings.from_env({"FINBANK_FILES_ROOT": str(tmp_path)})
    async with open_file_store(local) as store:
        assert isinstance(store, LocalFileStore)
    bucketless = Settings.from_env({"FINBANK_FILES_BACKEND": "s3"})
    with pytest.raises(SettingsError, match="FINBANK_FILES_S3_BUCKET is required"):
        async with open_file_store(bucketless):
            pass


def test_the_batch_job_of_the_terraform_stack_reads_and_writes_files_on_s3() -> None:
    """Its root filesystem is read-only: the reconciliation job must select the S3 store."""
    main_tf = ROOT / "deploy" / "terraform" / "modules" / "batch" / "main.tf"
    entries = re.findall(
        r'\{ name = "(FINBANK_[A-Z0-9_]+)", value = ("[^"]*"|[\w.]+) \}',
        main_tf.read_text(encoding="utf-8"),
    )
    # a literal is taken as is; a Terraform reference (var.x) stands for some value
    env = {name: value.strip('"') if value.startswith('"') else value for name, value in entries}
    assert "FINBANK_FILES_S3_BUCKET" in env

    settings = Settings.from_env(env)

    assert settings.profile is Profile.AWS
    assert settings.backends.files == "s3"
    assert settings.files.s3_bucket == "var.files_bucket_name"


def test_every_bad_value_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(
            {
                "FINBANK_PROFILE": "prod",
                "FINBANK_LEDGER_BACKEND": "sqlite",
                "FINBANK_POSTGRES_POOL_MAX": "many",
            }
        )
    message = str(raised.value)
    assert "FINBANK_PROFILE must be one of memory, local, aws" in message
    assert "FINBANK_LEDGER_BACKEND must be one of memory, postgres" in message
    assert "invalid setting FINBANK_POSTGRES_POOL_MAX" in message


def test_the_container_builds_the_payment_network_the_environment_names() -> None:
    from finbank_adapters.containers import build_container
    from finbank_adapters.sandbox import SimulatedSpi

    settings = Settings.from_env({"FINBANK_PIX_NETWORK_BACKEND": "sandbox"})
    network = build_container(settings).pix.payment_network()
    assert isinstance(network, SimulatedSpi)
    # a backend the selector has no provider for cannot get this far: from_env refuses it
    with pytest.raises(SettingsError, match="must be one of sandbox"):
        Settings.from_env({"FINBANK_PIX_NETWORK_BACKEND": "rsfn"})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("FINBANK_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
        ("FINBANK_POSTGRES_DSN", "postgres://u:p@db/finbank?sslmode=require"),
        ("FINBANK_POSTGRES_DSN", "postgresql://postgres@/test?host=/var/run/postgresql"),
        ("FINBANK_REDIS_URL", "redis://127.0.0.1:6379/1"),
        ("FINBANK_REDIS_URL", "rediss://:token@cache.internal:6379/0"),
        ("FINBANK_REDIS_URL", "unix:///run/redis.sock?db=2"),
    ],
)
def test_the_dsn_and_url_forms_the_drivers_take_are_accepted(name: str, raw: str) -> None:
    assert Settings.from_env({name: raw}).value_of(name) == raw


def test_a_pool_whose_minimum_is_above_its_maximum_is_refused_naming_both() -> None:
    """asyncpg refused it only when the pool was made, with a ValueError traceback."""
    env = {"FINBANK_POSTGRES_POOL_MIN": "20", "FINBANK_POSTGRES_POOL_MAX": "5"}
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert str(raised.value) == (
        "FINBANK_POSTGRES_POOL_MIN (20) is above FINBANK_POSTGRES_POOL_MAX (5)"
    )
    with pytest.raises(SettingsError, match="POOL_MIN"):
        Settings.from_env({}).replace_variables({"FINBANK_POSTGRES_POOL_MIN": "11"})
    same = Settings.from_env({"FINBANK_POSTGRES_POOL_MIN": "5", "FINBANK_POSTGRES_POOL_MAX": "5"})
    assert (same.postgres.pool_min, same.postgres.pool_max) == (5, 5)


@pytest.mark.parametrize(
    "name",
    [
        "FINBANK_REDIS_TIMEOUT_SECONDS",
        "FINBANK_PIX_SPI_TIMEOUT_SECONDS",
        "FINBANK_METRICS_FLUSH_SECONDS",
    ],
)
def test_a_wait_of_zero_seconds_is_refused_where_it_cannot_work(name: str) -> None:
    """A 0 s socket timeout fails every Redis call at once (the SPI's likewise), and a
    0 s flush period would spin; the smallest positive value is taken."""
    with pytest.raises(SettingsError, match=f"invalid setting {name}: Expected `float` > 0"):
        Settings.from_env({name: "0"})
    assert Settings.from_env({name: "0.001"}).value_of(name) == 0.001


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        (
            Settings(postgres=PostgresOptions(pool_max=0)),
            "invalid setting FINBANK_POSTGRES_POOL_MAX: Expected `int` >= 1",
        ),
        (
            Settings(postgres=PostgresOptions(dsn="user:s3cret@db.internal/finbank")),
            "invalid setting FINBANK_POSTGRES_DSN: Expected `str` matching regex",
        ),
        (
            Settings(redis=RedisOptions(timeout_seconds=0)),
            "invalid setting FINBANK_REDIS_TIMEOUT_SECONDS: Expected `float` > 0.0",
        ),
        (
            Settings(postgres=PostgresOptions(pool_min=9, pool_max=3)),
            "FINBANK_POSTGRES_POOL_MIN (9) is above FINBANK_POSTGRES_POOL_MAX (3)",
        ),
    ],
)
def test_settings_built_by_hand_are_checked_when_a_container_is_built(
    settings: Settings, said: str
) -> None:
    """msgspec checks bounds when it converts, not on construction: an embedder's
    hand-built settings reached the drivers unchecked."""
    with pytest.raises(SettingsError) as raised:
        build_container(settings)
    assert said in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_valid_settings_built_by_hand_pass_unchanged() -> None:
    for profile in Profile:
        settings = Settings.from_env({"FINBANK_PROFILE": profile.value})
        assert settings.validated() is settings
    by_hand = Settings(postgres=PostgresOptions(pool_min=5, pool_max=5))
    assert by_hand.validated() is by_hand
