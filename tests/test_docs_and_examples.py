"""Every python block in docs/ and every script in examples/ runs as a test."""

from __future__ import annotations

import pathlib
import re
import runpy
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").rglob("*.md"))
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_in_docs_run(doc: pathlib.Path) -> None:
    blocks = PYTHON_BLOCK.findall(doc.read_text(encoding="utf-8"))
    namespace: dict[str, object] = {"__name__": f"docs_{doc.stem}"}
    for block in blocks:
        exec(compile(block, str(doc), "exec"), namespace)  # noqa: S102 - our own docs


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_run(example: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr


def test_docs_and_examples_exist() -> None:
    assert DOCS
    assert EXAMPLES
    assert any(PYTHON_BLOCK.search(d.read_text(encoding="utf-8")) for d in DOCS)


def test_runpy_is_importable() -> None:
    # examples are plain scripts; importing one must not run it
    module = runpy.run_path(str(EXAMPLES[0]), run_name="not_main")
    assert callable(module["main"])
