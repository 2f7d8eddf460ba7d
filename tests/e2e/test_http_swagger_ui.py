"""Swagger UI renders every operation in a real headless browser with no internet.

The browser (Debian's ``chromium``; ``.ci/run`` installs it with apt) may
resolve no host but the loopback one, so the page works only if every asset
comes from the service itself (the ``swagger-ui-bundle-v2`` package), never
from a CDN. Skips, saying why, where no browser is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.http_live import live_server

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"no headless browser installed (looked for {', '.join(BROWSERS)})")


def headless(executable: str, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            executable,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            # no host but ours resolves: a CDN asset would fail to load
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.slow
def test_swagger_ui_renders_every_operation_offline(tmp_path: Path) -> None:
    executable = browser()
    with live_server() as base_url:
        page = httpx.get(f"{base_url}/schema/swagger").text
        document = httpx.get(f"{base_url}/schema/openapi.json").json()
        dom = headless(executable, f"{base_url}/schema/swagger", "--dump-dom")
        screenshot = tmp_path / "swagger.png"
        shot = headless(
            executable,
            f"{base_url}/schema/swagger",
            f"--screenshot={screenshot}",
            "--window-size=1280,2400",
        )
    # every script, style sheet and icon of the page is served by us
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    assert assets
    assert all(asset.startswith("/schema/static/") for asset in assets), assets
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = dom.stdout
    assert 'class="swagger-ui"' in rendered
    assert "Failed to load API definition" not in rendered
    shown = set(re.findall(r'data-path="([^"]+)"', rendered))
    documented = set(document["paths"])
    assert documented <= shown, documented - shown
    assert rendered.count("opblock-summary-method") >= sum(
        1 for item in document["paths"].values() for m in item if m != "parameters"
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 20_000  # a page, not a blank one
