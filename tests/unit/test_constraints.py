"""constraints.txt pins every distribution that ``finbank[dev]`` pulls in, at the
version installed here: the README, CI and the image install with it, so a fresh
machine gets the environment the last green run had. A dependency added to
pyproject.toml without regenerating the file fails here, by name."""

from __future__ import annotations

import pathlib
import sys
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


#: the interpreter constraints.txt is generated on (its header): a pin whose requirement
#: a marker leaves out here (``python_version < '3.13'``) is not stale
GENERATED_ON = {"python_version": "3.11", "python_full_version": "3.11.7"}


def walk(
    root: str, extras: frozenset[str]
) -> tuple[dict[NormalizedName, str], set[NormalizedName]]:
    """Every installed distribution that ``root[extras]`` requires, transitively, with
    its installed version (markers evaluated for this interpreter); and what it requires
    on :data:`GENERATED_ON`'s Python but not on this one (a marker on the version)."""
    seen: dict[NormalizedName, str] = {}
    left_out: set[NormalizedName] = set()
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
            if marker is None or any(
                marker.evaluate({"extra": extra}) for extra in (wanted or {""})
            ):
                stack.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
            elif any(
                marker.evaluate({**GENERATED_ON, "extra": extra}) for extra in (wanted or {""})
            ):
                left_out.add(canonicalize_name(requirement.name))
    return seen, left_out - set(seen)


def reachable(root: str, extras: frozenset[str]) -> dict[NormalizedName, str]:
    return walk(root, extras)[0]


def marked_out(root: str, extras: frozenset[str]) -> set[NormalizedName]:
    return walk(root, extras)[1]


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


def test_only_a_python_marker_leaves_a_pin_out() -> None:
    # pypix 0.2.0 says Requires-Python <3.13, and pyproject.toml leaves it out there
    left_out = marked_out("finbank", frozenset({"dev"}))
    if sys.version_info[:2] == (3, 11):  # the Python the pins are made on: nothing
        assert left_out == set()
    assert ("pypix" in left_out) is (sys.version_info >= (3, 13))


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
    # Nothing stale: each pin is something finbank[dev] still pulls in (on the Python
    # the file is generated on: on a newer one, a marker may leave a package out).
    stale = sorted(set(pinned) - set(installed) - marked_out("finbank", frozenset({"dev"})))
    assert not stale, f"pinned but no longer required: {stale}"
