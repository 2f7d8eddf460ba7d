"""``repr`` without personal data or secrets, for the core's structs.

A struct that holds a document (CPF/CNPJ), a PIX key, a token, a code, a
session or a secret declares which fields to mask::

    class KeyRegistration(msgspec.Struct, frozen=True, kw_only=True):
        key: str
        holder_document: str | None
        __repr__ = masked_repr("key", "holder_document")

Masked fields show ``'***'`` (``None`` stays ``None``, so a reader still
sees whether a value is present); every other field is shown as msgspec
would. ``tests/unit/test_pii_repr.py`` walks every public struct of the core
and fails for any sensitive field left in clear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MASK = "***"


def masked_repr(*fields: str) -> Callable[[Any], str]:
    """A ``__repr__`` for a msgspec struct that masks ``fields``."""
    hidden = frozenset(fields)

    def __repr__(self: Any) -> str:
        shown = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name in hidden and value is not None:
                shown.append(f"{name}={MASK!r}")
            else:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    return __repr__
