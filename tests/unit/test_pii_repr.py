"""No personal data or secret in the ``repr`` of any struct of the core.

The test walks every module of ``finbank_core``, builds each msgspec struct
with a unique marker string in every text field (nested structs too), and
checks that no marker of a *sensitive* field shows in the ``repr``: a
document (CPF/CNPJ), a PIX key, a BR Code (it carries the key and names), a
token, a secret, a password, a provider session, an ``otpauth://`` URI, an
e-mail or phone number, an MFA/confirmation code, and a person's name or
username (``*name``: holders, payers, debtors, key owners, merchants, who may
be sole traders; a username may be an e-mail or a CPF). Names are personal data
under the LGPD (art. 5, I): they stay out of logs and tracebacks like
documents do. ``*_masked`` fields hold already-masked values and are not
sensitive.

A new struct with such a field fails here until it masks it
(``finbank_core.shared.privacy.masked_repr``). Exemptions are listed below
with the reason the value is not personal or secret.
"""

from __future__ import annotations

import importlib
import itertools
import pkgutil
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import msgspec.inspect as mi

import finbank_core
from finbank_core.shared.errors import DomainError

SENSITIVE = re.compile(
    r"(^|_)(document|cpf|cnpj|secret|password|password_hash|session|otpauth_uri|email"
    r"|phone_number|key|token|br_code|brcode|name|username)$"
)
#: (struct, field): why it is not sensitive
EXEMPT: dict[tuple[str, str], str] = {
    ("*", "idempotency_key"): "a client-chosen retry key, not personal data",
    ("finbank_core.reconciliation.model.ReconItem", "key"): "an EndToEndId or rtrId",
    ("finbank_core.reconciliation.model.ReconLine", "key"): "an EndToEndId or rtrId",
}
#: MFA and confirmation codes are named ``code`` in auth; elsewhere ``code`` is a rule's code
AUTH_CODE = re.compile(r"^finbank_core\.auth\.")

_counter = itertools.count()


def is_sensitive(struct: str, field: str) -> bool:
    if (struct, field) in EXEMPT or ("*", field) in EXEMPT:
        return False
    if field == "code":
        return bool(AUTH_CODE.match(struct))
    return bool(SENSITIVE.search(field))


def public_structs() -> list[type[msgspec.Struct]]:
    found: dict[str, type[msgspec.Struct]] = {}
    for info in pkgutil.walk_packages(finbank_core.__path__, "finbank_core."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, msgspec.Struct)
                and obj.__module__ == module.__name__
                and not obj.__name__.startswith("_")
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[name] for name in sorted(found)]


class Built:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # marker -> "Struct.field"


def value_for(t: mi.Type, built: Built, owner: str, field: str, sensitive: bool) -> Any:
    if isinstance(t, mi.Metadata):
        return value_for(t.type, built, owner, field, sensitive)
    if isinstance(t, mi.StrType):
        marker = f"MARK{next(_counter):06d}Z"
        if sensitive:
            built.secrets[marker] = f"{owner}.{field}"
        return marker
    if isinstance(t, mi.UnionType):
        options = [o for o in t.types if not isinstance(o, mi.NoneType)]
        return value_for(options[0], built, owner, field, sensitive) if options else None
    if isinstance(t, mi.StructType):
        # Inside a sensitive field (a PixKey struct under ``key``) everything is sensitive.
        return build(t.cls, built, inside=f"{owner}.{field}" if sensitive else None)
    if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        item = value_for(t.item_type, built, owner, field, sensitive)
        kind = {mi.ListType: list, mi.SetType: set, mi.FrozenSetType: frozenset}
        return kind.get(type(t), tuple)([item])
    if isinstance(t, mi.TupleType):
        return tuple(value_for(i, built, owner, field, sensitive) for i in t.item_types)
    simple: dict[type[mi.Type], Any] = {
        mi.IntType: 1,
        mi.FloatType: 1.5,
        mi.BoolType: False,
        mi.NoneType: None,
        mi.DateTimeType: datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        mi.DateType: date(2026, 1, 5),
        mi.TimeType: time(12, 0),
        mi.TimeDeltaType: timedelta(seconds=1),
        mi.UUIDType: uuid.UUID(int=1),
        mi.DecimalType: Decimal("1.00"),
        mi.BytesType: b"bytes",
        mi.DictType: {},
        mi.AnyType: "any",
    }
    if type(t) in simple:
        return simple[type(t)]
    if isinstance(t, mi.EnumType):
        return next(iter(t.cls))
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    if isinstance(t, mi.CustomType):
        return _custom(t.cls)
    raise TypeError(f"no sample value for {t!r}")


def _custom(cls: type[Any]) -> Any:
    from finbank_core.shared.money import Money

    if cls is Money:
        return Money(100)
    raise TypeError(f"no sample value for {cls!r}")


def _pix_key(built: Built, where: str) -> msgspec.Struct:
    from finbank_core.pix.codes.keys import PixKey, PixKeyType

    value = str(uuid.uuid4())  # an EVP: canonical, so PixKey accepts it
    built.secrets[value] = where
    return PixKey(type=PixKeyType.EVP, value=value)


def _brcode(built: Built, where: str) -> msgspec.Struct:
    from finbank_core.pix.codes.brcode import BRCode

    key = str(uuid.uuid4())
    built.secrets[key] = f"{where}.pix_key"
    return BRCode(merchant_name="LOJA", merchant_city="SAO PAULO", pix_key=key)


#: structs that validate their fields: a valid sample, its sensitive values registered
SAMPLES: dict[str, Callable[[Built, str], msgspec.Struct]] = {
    "finbank_core.pix.codes.keys.PixKey": _pix_key,
    "finbank_core.pix.codes.brcode.BRCode": _brcode,
}


def build(cls: type[msgspec.Struct], built: Built, inside: str | None = None) -> msgspec.Struct:
    name = inside or f"{cls.__module__}.{cls.__qualname__}"
    sample = SAMPLES.get(f"{cls.__module__}.{cls.__qualname__}")
    if sample is not None:
        return sample(built, name)
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    kwargs = {
        f.name: value_for(
            f.type, built, name, f.name, inside is not None or is_sensitive(name, f.name)
        )
        for f in info.fields
    }
    return cls(**kwargs)


def test_every_core_struct_masks_its_sensitive_fields_in_repr() -> None:
    leaks: list[str] = []
    unbuilt: list[str] = []
    checked = 0
    for cls in public_structs():
        built = Built()
        try:
            instance = build(cls, built)
        except (
            TypeError,
            ValueError,
            msgspec.ValidationError,
            DomainError,
        ) as exc:
            # Only a struct with a sensitive field must be checkable.
            if built.secrets:
                unbuilt.append(f"{cls.__module__}.{cls.__qualname__}: {exc!r}")
            continue
        checked += 1
        text = repr(instance)
        leaks += [f"{where} in repr" for marker, where in built.secrets.items() if marker in text]
    assert checked > 100  # the walk really found the core's structs
    assert not leaks, "\n".join(sorted(set(leaks)))
    assert not unbuilt, "\n".join(unbuilt)


def test_the_walk_would_catch_a_leak() -> None:
    class Leaky(msgspec.Struct, frozen=True, kw_only=True):
        holder_document: str

    built = Built()
    Leaky.__module__ = "finbank_core.example"
    instance = build(Leaky, built)
    assert built.secrets
    assert any(marker in repr(instance) for marker in built.secrets)


def test_names_and_usernames_are_masked_where_they_used_to_show() -> None:
    from finbank_core.auth.model import Principal, SignUpCommand
    from finbank_core.pix.directory import NewKeyRegistration
    from finbank_core.pix.payments import PixParty

    built = Built()
    samples = [
        build(cls, built) for cls in (Principal, SignUpCommand, NewKeyRegistration, PixParty)
    ]
    names = {m: w for m, w in built.secrets.items() if w.endswith(("name", "username"))}
    assert len(names) >= 4
    shown = " ".join(repr(sample) for sample in samples)
    assert not [where for marker, where in names.items() if marker in shown]
    assert "username='***'" in repr(samples[0])
