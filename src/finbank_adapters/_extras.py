"""One clear error when an optional dependency group (a pip "extra") is missing.

``pip install finbank`` installs the core, the memory adapters and the composition
root. Each adapter package that needs a driver checks for it when it is imported
and, if it is not installed, raises :class:`MissingExtra`, whose one-line message
names the extra and the command that installs it::

    finbank_adapters.postgres needs the 'postgres' extra (asyncpg is not installed):
    pip install 'finbank[postgres]'

The check looks modules up (``importlib.util.find_spec``) without importing them,
so a package whose driver is present pays nothing for it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence

__all__ = [
    "EXTRA_MODULES",
    "MissingExtra",
    "missing_modules",
    "pip_command",
    "require_extra",
]

#: The top-level modules each extra of pyproject.toml installs (the ones finbank imports).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "http": ("litestar", "uvicorn", "segno", "rich", "structlog", "prometheus_client"),
    "postgres": ("asyncpg",),
    "redis": ("redis",),
    "kafka": ("aiokafka",),
    "aws": ("aioboto3", "botocore", "aiohttp", "aws_lambda_powertools"),
    "otel": ("opentelemetry",),
}


def pip_command(extras: Iterable[str]) -> str:
    """``pip install 'finbank[a,b]'`` for the given extras (sorted, deduplicated)."""
    return f"pip install 'finbank[{','.join(sorted(set(extras)))}]'"


class MissingExtra(ModuleNotFoundError):
    """An optional dependency of finbank is not installed.

    A ``ModuleNotFoundError`` (hence an ``ImportError``), so code that already
    guards an optional import keeps working; ``extras`` names the pip extras to
    install, ``pip`` the command, ``name`` the first missing module.
    """

    def __init__(self, needed_by: str, extras: Sequence[str], missing: Sequence[str]) -> None:
        self.needed_by = needed_by
        self.extras = tuple(sorted(set(extras)))
        self.missing = tuple(missing)
        self.pip = pip_command(self.extras)
        names = " and ".join(f"'{extra}'" for extra in self.extras)
        plural = "extras" if len(self.extras) > 1 else "extra"
        verb = "are" if len(self.missing) > 1 else "is"
        super().__init__(
            f"{needed_by} needs the {names} {plural} ({', '.join(self.missing)} {verb} "
            f"not installed): {self.pip}",
            name=self.missing[0] if self.missing else None,
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder refused it; or in sys.modules without a spec
        return False


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The top-level modules of ``modules`` that cannot be found."""
    return [module for module in modules if not _installed(module)]


def require_extra(needed_by: str, extra: str, modules: Sequence[str] | None = None) -> None:
    """Raise :class:`MissingExtra` unless ``modules`` (default: the whole extra) are found."""
    missing = missing_modules(EXTRA_MODULES[extra] if modules is None else modules)
    if missing:
        raise MissingExtra(needed_by, [extra], missing)
