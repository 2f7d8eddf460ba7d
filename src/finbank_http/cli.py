"""The ``finbank`` command: serve, demo, and operations on the configured profile."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from finbank_adapters.container import build_container
from finbank_adapters.settings import Settings, SettingsError


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from finbank_http.app import create_app

    uvicorn.run(create_app(), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from finbank_http.demo import run_demo

    return asyncio.run(run_demo(build_container(), sys.stdout))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finbank",
        description="finbank: ledger, PIX and auth for a Brazilian digital bank. "
        "The profile comes from FINBANK_PROFILE (memory by default).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser("demo", help="tell an end-to-end story and check every step")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        Settings.from_env()  # fail early, with a clear message, on bad settings
        result: int = args.handler(args)
    except SettingsError as exc:
        print(f"finbank: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
