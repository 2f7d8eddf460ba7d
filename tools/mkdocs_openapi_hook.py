"""mkdocs hook: the HTTP API page is generated from the app's OpenAPI document.

At build time the hook builds ``create_app()`` (memory profile; nothing
connects), adds its OpenAPI document to the site as ``openapi.json`` and
replaces the ``<!-- openapi-endpoints -->`` marker in ``api.md`` with a table
of every operation, so the page can never drift from the code.
"""

from __future__ import annotations

import json
from typing import Any

MARKER = "<!-- openapi-endpoints -->"
_METHODS = ("get", "post", "put", "patch", "delete")


def openapi_document() -> dict[str, Any]:
    from finbank_http.app import create_app
    from finbank_http.openapi import openapi_document as served_document

    # the document the service serves at /schema/openapi.json, finished (problems,
    # closed bodies, operation ids...), not Litestar's raw one
    return served_document(create_app())


def endpoints_table(document: dict[str, Any]) -> str:
    rows = ["| method | path | summary | auth |", "|---|---|---|---|"]
    for path, item in sorted(document.get("paths", {}).items()):
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            summary = (operation.get("summary") or "").replace("|", "\\|")
            secured = "bearer" if operation.get("security") else ""
            rows.append(f"| `{method.upper()}` | `{path}` | {summary} | {secured} |")
    return "\n".join(rows)


_document: dict[str, Any] | None = None


def _get_document() -> dict[str, Any]:
    global _document  # one build, one document
    if _document is None:
        _document = openapi_document()
    return _document


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    content = json.dumps(_get_document(), indent=2, sort_keys=True)
    files.append(File.generated(config, "openapi.json", content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, endpoints_table(_get_document()))
