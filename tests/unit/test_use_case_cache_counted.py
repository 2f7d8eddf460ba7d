"""The use-case cache sees overrides by a count (``finbank._provided._CountingLock``):
every way dependency-injector offers to change an override moves it, after the first
use of a use case too; walking a use case's providers (reads) does not."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from dependency_injector import containers, providers

from finbank import _provided
from finbank._provided import UseCases


class _Part:
    pass


class _Whole:
    def __init__(self, part: object) -> None:
        self.part = part


class _Wiring(containers.DeclarativeContainer):
    shared = providers.Singleton(_Part)
    other = providers.Singleton(_Part)
    made = providers.Factory(_Whole, part=shared)
    made_other = providers.Factory(_Whole, part=other)


class _Replacement(containers.DeclarativeContainer):
    shared = providers.Object("from the overriding container")


class _Outer(containers.DeclarativeContainer):
    inner = providers.Container(_Wiring)
    made = providers.Factory(_Whole, part=inner.shared)


def test_overrides_are_counted_with_this_dependency_injector() -> None:
    assert _provided._OVERRIDES_COUNTED
    lock = providers.Provider.__dict__["overriding_lock"]
    assert isinstance(lock, _provided._CountingLock)
    assert _provided._count_overrides()  # installing again changes nothing
    again = providers.Provider.__dict__["overriding_lock"]
    assert again is lock
    assert not isinstance(again._lock, _provided._CountingLock)


async def test_an_override_after_first_use_is_seen_and_so_is_its_reset() -> None:
    wiring = _Wiring()
    built = UseCases()
    first = await built(wiring.made)
    assert await built(wiring.made) is first
    wiring.shared.override(providers.Object("one"))
    assert (await built(wiring.made)).part == "one"
    wiring.shared.override(providers.Object("two"))
    assert (await built(wiring.made)).part == "two"
    wiring.shared.reset_last_overriding()
    assert (await built(wiring.made)).part == "one"
    wiring.shared.reset_override()
    back = await built(wiring.made)
    assert back.part is wiring.shared()
    assert await built(wiring.made) is back


async def test_a_with_block_override_holds_only_inside_it() -> None:
    wiring = _Wiring()
    built = UseCases()
    before = await built(wiring.made)
    with wiring.shared.override(providers.Object("inside")):
        assert (await built(wiring.made)).part == "inside"
    after = await built(wiring.made)
    assert after.part is before.part


async def test_a_container_overridden_by_another_is_seen_and_so_is_its_reset() -> None:
    wiring = _Wiring()
    built = UseCases()
    before = await built(wiring.made)
    wiring.override(_Replacement())
    assert (await built(wiring.made)).part == "from the overriding container"
    wiring.reset_override()
    assert (await built(wiring.made)).part is before.part


async def test_a_provider_inside_a_container_provider_overridden_later_is_seen() -> None:
    outer = _Outer()
    built = UseCases()
    before = await built(outer.made)
    outer.inner.shared.override(providers.Object("nested"))
    assert (await built(outer.made)).part == "nested"
    outer.inner.shared.reset_override()
    assert (await built(outer.made)).part is before.part


async def test_an_override_made_in_another_thread_is_seen() -> None:
    wiring = _Wiring()
    built = UseCases()
    await built(wiring.made)
    thread = threading.Thread(target=lambda: wiring.shared.override(providers.Object("thread")))
    thread.start()
    thread.join()
    assert (await built(wiring.made)).part == "thread"
    wiring.shared.reset_override()


async def test_building_one_use_case_does_not_throw_away_the_others() -> None:
    # walking a use case's providers reads ``related`` (which holds the lock): not a change
    wiring = _Wiring()
    built = UseCases()
    one = await built(wiring.made)
    other = await built(wiring.made_other)
    assert await built(wiring.made) is one
    assert await built(wiring.made_other) is other
    fresh = UseCases()  # another facade building the same use cases
    await fresh(wiring.made)
    assert await built(wiring.made) is one


async def test_without_the_count_every_provider_is_read_and_overrides_still_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_provided, "_OVERRIDES_COUNTED", False)
    monkeypatch.setattr(_provided, "_generation", 0)

    class _Silent:  # a lock that counts nothing, as a library changing overrides elsewhere
        def __init__(self, lock: Any) -> None:
            self._lock = lock

        def __enter__(self) -> Any:
            return self._lock.__enter__()

        def __exit__(self, *exc: object) -> None:
            self._lock.__exit__(*exc)

    counting = providers.Provider.__dict__["overriding_lock"]
    monkeypatch.setattr(providers.Provider, "overriding_lock", _Silent(counting._lock))
    wiring = _Wiring()
    built = UseCases()
    first = await built(wiring.made)
    assert await built(wiring.made) is first
    wiring.shared.override(providers.Object("read"))
    assert _provided._generation == 0  # nothing counted...
    assert (await built(wiring.made)).part == "read"  # ...and the override is seen
    wiring.shared.reset_override()
    assert (await built(wiring.made)).part is first.part


def test_a_lock_that_does_not_count_is_found_out(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = providers.Provider.__dict__["overriding_lock"]
    monkeypatch.setattr(_provided._CountingLock, "__exit__", lambda self, *exc: None)
    monkeypatch.setattr(_provided._CountingLock, "__enter__", lambda self: True)
    assert not _provided._count_overrides()
    assert providers.Provider.__dict__["overriding_lock"] is counting
