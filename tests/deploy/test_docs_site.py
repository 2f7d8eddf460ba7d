"""The documentation site builds with ``mkdocs build --strict`` and its API page
is generated from the app's OpenAPI document."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.conftest import REQUIRE_SERVICES

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    needed = ("mkdocs", "material", "mkdocstrings")
    if any(importlib.util.find_spec(name) is None for name in needed):
        message = "mkdocs-material or mkdocstrings is not installed"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message} and FINBANK_REQUIRE_SERVICES=1")
        pytest.skip(message)
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_the_site_builds_strictly_with_every_page_of_the_nav(site: pathlib.Path) -> None:
    for page in ("index.html", "concepts/index.html", "api/index.html", "operations/index.html"):
        assert (site / page).is_file(), page


def test_the_api_page_lists_the_operations_of_the_openapi_document(site: pathlib.Path) -> None:
    document = json.loads((site / "openapi.json").read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.")
    page = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "<!-- openapi-endpoints -->" not in page
    for path in document["paths"]:
        assert f"<code>{path}</code>" in page, path
    assert "/v1/accounts" in document["paths"]
    assert "/metrics" not in document["paths"]  # served on its own listener, not the API
    # the published document is the one the service serves, finished (finbank_http.openapi)
    assert (
        "insufficient_funds"
        in document["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
    )


def test_the_runbooks_exist_for_every_alarm_the_terraform_links_to(site: pathlib.Path) -> None:
    monitoring = (ROOT / "deploy/terraform/modules/monitoring/main.tf").read_text(encoding="utf-8")
    operations = (site / "operations" / "index.html").read_text(encoding="utf-8")
    anchors = {
        line.split("#", 1)[1].split('"')[0]
        for line in monitoring.splitlines()
        if "operations.md#" in line
    }
    assert len(anchors) >= 5
    for anchor in anchors:
        assert f'id="{anchor}"' in operations, anchor


def test_the_api_reference_is_generated_from_the_docstrings(site: pathlib.Path) -> None:
    documented = {
        "finbank": "open_bank",
        "accounts": "Ledger",
        "pix": "PaymentNetwork",
        "auth": "IdentityProvider",
        "reconciliation": "FileStore",
        "shared": "Money",
        "adapters": "InMemoryLedger",
    }
    for page, name in documented.items():
        html = (site / "reference" / page / "index.html").read_text(encoding="utf-8")
        assert re.search(rf'id="finbank(_\w+)?(\.\w+)*\.{name}"', html), (page, name)
        assert ":::" not in html, page  # every directive was rendered
    architecture = (site / "architecture" / "index.html").read_text(encoding="utf-8")
    assert 'id="ports-and-their-adapters"' in architecture
    for guide in ("pix", "testing"):
        assert (site / "guides" / guide / "index.html").is_file(), guide
