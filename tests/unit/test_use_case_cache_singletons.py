"""``UseCases`` checks only the providers a call may reach: a ``Singleton`` is built once, so
a ``Callable`` or ``Factory`` under it no longer stops its use case being cached (the PIX
use cases, ``send_pix`` among them), and an override of the singleton itself is seen."""

from __future__ import annotations

from dependency_injector import containers, providers

from finbank import open_bank
from finbank._provided import UseCases, provided


class _Part:
    pass


class _Whole:
    def __init__(self, part: object, extra: object = None) -> None:
        self.part = part
        self.extra = extra


class _Wiring(containers.DeclarativeContainer):
    called = providers.Callable(_Part)
    fresh = providers.Factory(_Part)
    single = providers.Singleton(_Whole, part=called, extra=fresh)
    on_single = providers.Factory(_Whole, part=single)
    on_called = providers.Factory(_Whole, part=called)


async def test_a_singleton_with_callables_under_it_is_cached_like_provided_gives_it() -> None:
    wiring = _Wiring()
    built = UseCases()
    first = await built(wiring.single)
    assert await built(wiring.single) is first
    assert first is await provided(wiring.single)
    on_single = await built(wiring.on_single)
    assert await built(wiring.on_single) is on_single
    assert on_single.part is first


async def test_a_callable_reached_on_every_call_still_prevents_caching() -> None:
    wiring = _Wiring()
    built = UseCases()
    assert await built(wiring.on_called) is not await built(wiring.on_called)


async def test_an_override_of_the_singleton_or_by_a_factory_is_seen() -> None:
    wiring = _Wiring()
    built = UseCases()
    first = await built(wiring.on_single)
    replacement = _Whole("replaced")
    wiring.single.override(providers.Object(replacement))
    assert (await built(wiring.on_single)).part is replacement
    wiring.single.override(providers.Factory(_Whole, part=wiring.fresh))
    one, two = await built(wiring.on_single), await built(wiring.on_single)
    assert one.part is not two.part  # a factory now: built on every call again
    wiring.single.reset_override()
    wiring.single.reset_override()
    assert (await built(wiring.on_single)).part is first.part


async def test_send_pix_is_cached_and_an_override_after_open_is_seen() -> None:
    async with open_bank(profile="memory") as bank:
        built = UseCases()
        send_pix = bank.container.pix().send_pix
        first = await built(send_pix)
        assert await built(send_pix) is first
        entry = built._built[id(send_pix)]
        assert entry.watched is not None  # cached, checked by its own override only
        assert len(entry.watched) == 1
        stand_in = object()
        send_pix.override(providers.Object(stand_in))
        try:
            assert await built(send_pix) is stand_in
        finally:
            send_pix.reset_override()
        assert await built(send_pix) is first
