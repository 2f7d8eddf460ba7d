"""QR code rendering with segno (an adapter: the core never imports segno)."""

from __future__ import annotations

import io

from finbank_adapters._extras import require_extra

require_extra("finbank_adapters.qr", "http", ["segno"])

import segno  # noqa: E402


class SegnoQrRenderer:
    """PNG and SVG QR codes of BR Code payloads (error correction M, as BR Codes use)."""

    def __init__(self, *, border: int = 4) -> None:
        self._border = border

    def _make(self, payload: str) -> segno.QRCode:
        return segno.make(payload, error="m", micro=False)

    def render_png(self, payload: str, *, scale: int = 8) -> bytes:
        out = io.BytesIO()
        self._make(payload).save(out, kind="png", scale=scale, border=self._border)
        return out.getvalue()

    def render_svg(self, payload: str, *, scale: int = 8) -> bytes:
        out = io.BytesIO()
        self._make(payload).save(out, kind="svg", scale=scale, border=self._border, xmldecl=True)
        return out.getvalue()
