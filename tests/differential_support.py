"""What the differential walks of the facades share.

Used by ``tests/integration/test_bank_differential.py`` and
``tests/integration/test_auth_differential.py``.
"""

from __future__ import annotations

import msgspec


def types_of(value: object) -> object:
    """The Python type of everything in ``value``, field by field: what an embedder's
    code meets, beyond what the values print as."""
    if isinstance(value, msgspec.Struct):
        return {name: types_of(getattr(value, name)) for name in type(value).__struct_fields__}
    if isinstance(value, list | tuple):
        return [type(value).__name__, *(types_of(item) for item in value)]
    if isinstance(value, dict):
        return {key: types_of(item) for key, item in value.items()}
    return f"{type(value).__module__}.{type(value).__qualname__}"
