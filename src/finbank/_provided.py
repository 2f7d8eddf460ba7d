"""The one typed way the facades reach a use case in the containers."""

from __future__ import annotations

import inspect
import operator
import threading
from typing import Any, TypeVar, cast

from dependency_injector import providers

T = TypeVar("T")


async def provided(provider: providers.Provider[T]) -> T:
    """What ``provider`` builds, typed as it declares (``Factory(SendPix, ...)`` gives ``SendPix``).

    The facades take providers from the typed context containers
    (``container.pix().send_pix`` is a ``Factory[SendPix]`` to mypy), so a
    provider that builds the wrong class, or a facade method that claims
    the wrong result, is a type error. A provider that depends on an async
    resource returns an awaitable; it is awaited here.
    """
    built: object = provider()
    if inspect.isawaitable(built):
        built = await built
    return cast(T, built)


#: what a cached use case may call: providers that give the same object on every call
#: until they are overridden (or, for resources, shut down). A ``Callable`` only as the
#: selector of a ``Selector`` (it reads the settings); a ``Factory`` only at the top;
#: either, anywhere, below a ``Singleton`` (called once, to build it).
_STABLE = (
    providers.Object,
    providers.Dependency,
    providers.BaseSingleton,
    providers.Resource,
    providers.Selector,
)


#: bumped whenever :func:`finbank.bank.opened` opens or closes a container (resources
#: (pools, clients) are new objects after a container is opened again, and their providers
#: say nothing of it: ``initialized`` is true before and after) and whenever a provider's
#: overrides change (:class:`_CountingLock`): use cases built before are built again
_generation = 0


def containers_changed() -> None:
    """A container was opened or closed: every use case is built again on its next call."""
    global _generation
    _generation += 1


class _CountingLock:
    """dependency-injector's ``Provider.overriding_lock``, which also counts its uses.

    dependency-injector announces no override, but every way to change what a
    provider overrides with holds this one lock (a class attribute shared by
    every provider) while it does: ``override()`` (also as a ``with`` block,
    and through ``Container.override``, ``DependenciesContainer`` and
    ``Configuration``), ``reset_last_overriding()`` (the end of a ``with``
    block) and ``reset_override()``. So :data:`_generation` changes on each of
    them, after the change. Reading ``overridden`` (and ``related``, which reads
    it) holds it too: counted as well (a use case built again for nothing, never
    one kept too long), except while this thread walks a use case's providers
    (:func:`_graph`, reads only: :data:`_walking`). The same lock, so the
    same locking; installed once, at import, by :func:`_count_overrides`, which
    checks that overriding and resetting a provider really move the count.
    """

    __slots__ = ("_lock",)

    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def __enter__(self) -> bool:
        return bool(self._lock.__enter__())

    def __exit__(self, *exc: object) -> None:
        global _generation
        if not _walking.active:
            _generation += 1  # still holding the lock: counted after the change
        self._lock.__exit__(*exc)

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self._lock.acquire(*args, **kwargs))

    def release(self) -> None:
        global _generation
        if not _walking.active:
            _generation += 1
        self._lock.release()


class _Walking(threading.local):
    #: True while this thread reads a use case's providers (:func:`_graph`): the lock's
    #: uses are reads then, not counted (another thread's overrides still are)
    active = False


_walking = _Walking()


def _moves_on(change: Any) -> bool:
    before = _generation
    change()
    return _generation != before


def _count_overrides() -> bool:
    """Install :class:`_CountingLock` as ``Provider.overriding_lock``; True if every way to
    change an override is then counted (checked on a throwaway provider). False leaves the
    library as it was: then :class:`UseCases` reads every provider's override each call."""
    current = providers.Provider.__dict__.get("overriding_lock")
    if current is None:
        return False
    if not isinstance(current, _CountingLock):
        try:
            providers.Provider.overriding_lock = _CountingLock(current)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # an immutable type: nothing installed
            return False
    probe: providers.Object[int] = providers.Object(1)
    context: list[Any] = []
    counted = (
        _moves_on(lambda: probe.override(providers.Object(2)))
        and _moves_on(probe.reset_last_overriding)
        and _moves_on(lambda: context.append(probe.override(providers.Object(3))))
        and _moves_on(lambda: context[0].__exit__(None, None, None))
        and _moves_on(lambda: probe.override(providers.Object(4)))
        and _moves_on(probe.reset_override)
        and probe.last_overriding is None
        and probe() == 1
    )
    if not counted:
        providers.Provider.overriding_lock = current  # type: ignore[attr-defined]
    return counted


#: whether overrides move :data:`_generation` (:func:`_count_overrides`)
_OVERRIDES_COUNTED = _count_overrides()


class _Built:
    """One use case, with what its providers' overrides (and resources) were when built."""

    __slots__ = ("checked", "generation", "provider", "resources", "seen", "value", "watched")

    def __init__(
        self,
        provider: providers.Provider[Any],
        watched: tuple[Any, ...] | None,
        checked: tuple[Any, ...],
        resources: tuple[Any, ...],
        seen: list[object],
    ) -> None:
        self.provider = provider  # kept: the cache is keyed by its id
        self.watched = watched
        #: the providers whose override is read on each call: none when overrides are
        #: counted (:data:`_OVERRIDES_COUNTED`), else every one watched
        self.checked = checked
        self.resources = resources
        self.seen = seen
        self.value: object = None
        self.generation = _generation


def _reached(provider: providers.Provider[Any]) -> list[Any]:
    """The providers a call of ``provider`` may call, each once: an overridden one's last
    override (what it calls instead), and below a ``Singleton`` nothing: built once, it
    does not call what it was built from again (an override under it changes nothing
    until the singleton itself is overridden, as with :func:`provided`)."""
    found: dict[int, Any] = {}
    stack: list[Any] = [provider]
    while stack:
        p = stack.pop()
        if id(p) in found:
            continue
        found[id(p)] = p
        overriding = p.last_overriding
        if overriding is not None:
            stack.append(overriding)
        elif not isinstance(p, providers.Singleton):
            stack.extend(p.related)
    return list(found.values())


def _graph(provider: providers.Provider[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """The providers a call of ``provider`` may call (:func:`_reached`) and its resources;
    None when one of them may give a new object on each call (then nothing is cached)."""
    _walking.active = True  # reads only (``related`` reads ``overridden``): not counted
    try:
        watched = tuple(_reached(provider))
    finally:
        _walking.active = False
    related = watched[1:]  # the first is ``provider``
    selectors = {id(p.selector) for p in related if isinstance(p, providers.Selector)}
    for p in related:
        if not isinstance(p, _STABLE) and id(p) not in selectors:
            return None
    resources = tuple(p for p in related if isinstance(p, providers.Resource))
    return watched, resources


_overriding = operator.attrgetter("last_overriding")
_initialized = operator.attrgetter("initialized")


def _state(watched: tuple[Any, ...], resources: tuple[Any, ...]) -> list[object]:
    return [*map(_overriding, watched), *map(_initialized, resources)]


class UseCases:
    """The use cases a facade calls, each built once and reused, and built again when a
    provider it is built from is overridden, or its override reset, or a resource it
    uses is shut down or initialized, or after a container was opened or closed
    (:func:`containers_changed`): what :func:`provided` would build on this call.

    Building a use case resolves a dozen or two providers (a few microseconds, on
    every HTTP request); checking whether any of them changed compares one counter
    that every override and reset moves (:class:`_CountingLock`: any provider's, so
    an override elsewhere builds this one again too) and reads ``initialized`` of
    the resources a call may reach (below a ``Singleton`` nothing is: built once, it
    keeps what it was built with, overrides under it included). Were overrides not
    counted (a dependency-injector that changes them without its lock), the override
    of each provider a call may reach would be read instead. A use case whose
    providers may give a new object on each call (a ``Factory`` below the top, a plain
    ``Callable``, not under a ``Singleton``) is built on every call, as
    :func:`provided` does. Use cases keep no state between calls (the core's
    rule: they hold their ports), so one instance serves concurrent calls.

    Not seen: a ``Singleton``'s ``reset()`` (so neither an override under a singleton
    followed by its ``reset()``), a provider's arguments changed in place
    (``set_kwargs``), a resource shut down and opened again between two calls other
    than by :func:`finbank.bank.opened`; override the provider instead (what
    ``Overrides``, ``configure`` and the container's documentation do). One per
    facade, so per :class:`~finbank.Bank`.
    """

    __slots__ = ("_built",)

    def __init__(self) -> None:
        self._built: dict[int, _Built] = {}

    async def __call__(self, provider: providers.Provider[T]) -> T:
        key = id(provider)
        built = self._built.get(key)
        if built is not None and built.provider is provider:
            if built.watched is None:  # not cacheable (see above)
                return await provided(provider)
            if built.generation == _generation and (
                not built.seen or _state(built.checked, built.resources) == built.seen
            ):
                return cast(T, built.value)
        graph = _graph(provider)
        if graph is None:
            self._built[key] = _Built(provider, None, (), (), [])
            return await provided(provider)
        watched, resources = graph
        # the state before building: an override made while it builds is seen next call
        checked = () if _OVERRIDES_COUNTED else watched  # overrides: counted, or read
        entry = _Built(provider, watched, checked, resources, _state(checked, resources))
        value: T = await provided(provider)
        entry.value = value
        self._built[key] = entry
        return value
