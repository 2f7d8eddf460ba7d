"""The paths every ``FileStore`` accepts: one rule, so memory, disk and S3 agree.

A path is relative, ``/``-separated, and names one file the same way on every
backend. Refused with :class:`InvalidInput`, before anything is read or written:

* an empty path, an absolute one (``/x``), an empty segment (``a//b``, ``a/``);
* ``.`` and ``..`` segments: on disk ``a/../b`` is ``b`` while on S3 it is a key
  of its own, and ``../tenant-b/x`` under a store's prefix is another tenant's
  file (S3 does not normalise keys, so the store must refuse, not resolve);
* control characters (NUL, newline, ...) and text that is not valid UTF-8
  (lone surrogates): no file system or S3 key takes them as they are;
* a segment over 255 bytes (the usual file-name limit) or a path over 1024
  bytes (S3's key limit), so a name that fits one backend fits the others.
"""

from __future__ import annotations

from finbank_core.shared.errors import InvalidInput

MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 1024


def check_path(path: str) -> str:
    """Return ``path`` unchanged if every store accepts it; raise ``InvalidInput`` otherwise.

    The message says what is wrong without echoing the path (it may be anything).
    """
    if not isinstance(path, str):
        raise InvalidInput("a file path must be a string")
    if not path:
        raise InvalidInput("a file path must not be empty")
    if path.startswith("/"):
        raise InvalidInput("a file path must be relative to the store")
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise InvalidInput("a file path must not contain control characters")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("a file path must be valid UTF-8 text") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise InvalidInput(f"a file path must be at most {MAX_PATH_BYTES} bytes")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidInput("a file path must not have empty, '.' or '..' segments")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidInput(f"a file name must be at most {MAX_SEGMENT_BYTES} bytes")
    return path
