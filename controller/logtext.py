"""One escaping rule for every peer-controlled string that goes into a log line.

A log line is read by people and by tools (journald, grep, a browser showing a log
file): a value a peer chose — an NAI, a Diameter identity, a host name, an error
message a peer or a gateway sent back — must not be able to start a forged line
(CR/LF), move the terminal's cursor (ESC), reorder what is shown (bidi controls) or
open markup.  ``log_text(value)`` keeps printable text as it is (so
``alice@home.example`` stays readable and greppable) and writes everything else as a
Python-style escape:

- ``\\`` -> ``\\\\`` (so an escape in the output always means an escape);
- ``\\r`` ``\\n`` ``\\t`` -> ``\\r`` ``\\n`` ``\\t``; other C0 controls and DEL -> ``\\xNN``;
- ``<`` ``>`` -> ``\\x3c`` ``\\x3e`` (no raw markup in a log);
- non-ASCII that Python does not call printable (C1 controls, separators such as
  U+2028, format characters such as U+202E, unassigned) -> ``\\xNN``/``\\uNNNN``/
  ``\\UNNNNNNNN``;
- longer than ``limit`` characters: cut, with ``...(+N chars)``.

Pure: usable from the core (``controller.core``) and the adapters alike.
"""

from __future__ import annotations

import re

LIMIT = 256

_UNSAFE = re.compile(r"[^\x20-\x7e]|[\\<>]")
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    if c in _NAMED:
        return _NAMED[c]
    cp = ord(c)
    if cp > 0x7F and c.isprintable():
        return c
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def log_text(value: object, limit: int = LIMIT) -> str:
    """``value`` (``str()`` of it if not a string) as one line of plain text."""
    text = value if isinstance(value, str) else str(value)
    extra = len(text) - limit
    if extra > 0:
        text = text[:limit]
    if _UNSAFE.search(text):
        text = _UNSAFE.sub(_escape, text)
    return text + (f"...(+{extra} chars)" if extra > 0 else "")
