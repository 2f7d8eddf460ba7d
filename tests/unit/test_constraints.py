"""constraints.txt pins every distribution that ``finbank[dev]`` pulls in, at the
version installed here: the README, CI and the image install with it, so a fresh
machine gets the environment the last green run had. A dependency added to
pyproject.toml without regenerating the file fails here, by name."""

from __future__ import annotations

import pathlib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"


def pins(text: str) -> dict[NormalizedName, str]:
    """``name==version`` lines by canonical name; comments and blanks skipped."""
    found: dict[NormalizedName, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not (sep and version):
            raise ValueError(f"not an exact pin: {raw!r}")
        key = canonicalize_name(name)
        if key in found:
            raise ValueError(f"pinned twice: {name}")
        found[key] = version.strip()
    return found


def reachable(root: str, extras: frozenset[str]) -> dict[NormalizedName, str]:
    """Every installed distribution that ``root[extras]`` requires, transitively,
    with its installed version (markers evaluated for this interpreter)."""
    seen: dict[NormalizedName, str] = {}
    visited: set[tuple[NormalizedName, frozenset[str]]] = set()
    stack = [(canonicalize_name(root), extras)]
    while stack:
        name, wanted = stack.pop()
        if (name, wanted) in visited:
            continue
        visited.add((name, wanted))
        dist = metadata.distribution(name)
        seen[name] = dist.version
        for spec in dist.requires or []:
            requirement = Requirement(spec)
            marker = requirement.marker
            applies = marker is None or any(
                marker.evaluate({"extra": extra}) for extra in (wanted or {""})
            )
            if applies:
                stack.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return seen


def test_pins_parse_and_refuse_ranges() -> None:
    assert pins("# c\nfoo==1.0\n\nBar_Baz==2  # why\n") == {"foo": "1.0", "bar-baz": "2"}
    for bad in ("foo>=1.0", "foo"):
        with pytest.raises(ValueError, match="not an exact pin"):
            pins(bad)
    with pytest.raises(ValueError, match="pinned twice: Foo"):
        pins("foo==1\nFoo==1")


def test_walk_follows_extras_of_dependencies() -> None:
    # finbank[dev] -> finbank[all] -> finbank[redis] -> redis[hiredis] -> hiredis
    assert "hiredis" in reachable("finbank", frozenset({"dev"}))
    assert "hiredis" not in reachable("finbank", frozenset())


def test_every_dev_dependency_is_pinned_at_its_installed_version() -> None:
    pinned = pins(CONSTRAINTS.read_text(encoding="utf-8"))
    installed = reachable("finbank", frozenset({"dev"}))
    installed.pop(canonicalize_name("finbank"))
    missing = sorted(name for name in installed if name not in pinned)
    assert not missing, f"not in constraints.txt (regenerate it, see its header): {missing}"
    differ = {
        name: (version, pinned[name])
        for name, version in installed.items()
        if version != pinned[name]
    }
    assert not differ, f"installed (left) differs from constraints.txt (right): {differ}"
    # Nothing stale: each pin is something finbank[dev] still pulls in.
    stale = sorted(set(pinned) - set(installed))
    assert not stale, f"pinned but no longer required: {stale}"
