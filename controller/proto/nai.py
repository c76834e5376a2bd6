"""Network Access Identifier syntax (RFC 7542 §2.2), checked where an NAI enters.

One grammar for every door: the MN-NAI extension (``mip``), the Diameter User-Name of
AMR/HAR (``diameter``), the topology loader (``config``) and the REST ``{nai}`` path
(``adapters.auth.NAI_PATH`` uses :data:`USER_AT_REALM_PATTERN`, the same regular
expression).  Pure: no I/O.

RFC 7542 §2.2, as implemented here::

    nai            =  utf8-username
    nai            =/ "@" utf8-realm
    nai            =/ utf8-username "@" utf8-realm
    utf8-username  =  dot-string
    dot-string     =  string *( "." string )
    string         =  1*utf8-atext
    utf8-atext     =  ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
                      "-" / "/" / "=" / "?" / "^" / "_" / "`" / "{" / "|" / "}" / "~" /
                      UTF8-xtra-char
    utf8-realm     =  1*( label "." ) label
    label          =  utf8-rtext *( ldh-str )
    ldh-str        =  *( utf8-rtext / "-" ) utf8-rtext
    utf8-rtext     =  ALPHA / DIGIT / UTF8-xtra-char
    UTF8-xtra-char =  UTF8-2 / UTF8-3 / UTF8-4          ; any code point >= U+0080

Two narrowings, both in the spirit of RFC 7542 §2.4 (an NAI is an identifier, to be
displayed and compared, not free text):

- at most :data:`MAX_OCTETS` (253) octets of UTF-8 (RFC 7542 §2.3; a RADIUS/Diameter
  User-Name that fits everywhere);
- UTF8-xtra-char excludes :data:`EXCLUDED` code points: C1 controls, surrogates,
  spaces and line/paragraph separators, bidirectional and invisible format characters
  (U+200B, U+2060, U+FEFF), noncharacters U+FFFE/U+FFFF.  None has a place in an
  identifier, and each can forge what a log line or a page shows.

So an NAI never holds ASCII controls, spaces, ``<>"(),;:[\\]@`` (beyond the one ``@``),
and cannot start a log line or an HTML tag.
"""

from __future__ import annotations

import re

MAX_OCTETS = 253

#: Code point ranges (inclusive) taken out of UTF8-xtra-char.
EXCLUDED: tuple[tuple[int, int], ...] = (
    (0x0080, 0x00A0),    # C1 controls; U+00A0 no-break space
    (0x061C, 0x061C),    # Arabic letter mark (bidi)
    (0x1680, 0x1680),    # Ogham space mark
    (0x180E, 0x180E),    # Mongolian vowel separator (invisible)
    (0x2000, 0x200B),    # en quad .. hair space, zero-width space
    (0x200E, 0x200F),    # left-to-right / right-to-left mark
    (0x2028, 0x202F),    # line / paragraph separator, bidi embeddings, narrow NBSP
    (0x205F, 0x2060),    # medium mathematical space, word joiner
    (0x2066, 0x2069),    # bidi isolates
    (0x3000, 0x3000),    # ideographic space
    (0xD800, 0xDFFF),    # surrogates (not characters; strict UTF-8 cannot carry them)
    (0xFEFF, 0xFEFF),    # zero-width no-break space (BOM)
    (0xFFFE, 0xFFFF),    # noncharacters
)


def _escape(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _xtra_class() -> str:
    """UTF8-xtra-char minus :data:`EXCLUDED`, as character class ranges that both
    Python's ``re`` and pydantic's (Rust) regex engine read the same way."""
    ranges, start = [], 0x80
    for lo, hi in EXCLUDED:
        if start < lo:
            ranges.append(f"{_escape(start)}-{_escape(lo - 1)}")
        start = hi + 1
    ranges.append(f"{_escape(start)}-{_escape(0x10FFFF)}")
    return "".join(ranges)


_XTRA = _xtra_class()
_ATEXT = f"[A-Za-z0-9!#$%&'*+\\-/=?^_`{{|}}~{_XTRA}]"
_RTEXT = f"[A-Za-z0-9{_XTRA}]"
_LDH = f"[A-Za-z0-9{_XTRA}\\-]"
_USERNAME = f"{_ATEXT}+(?:\\.{_ATEXT}+)*"
_LABEL = f"{_RTEXT}(?:{_LDH}*{_RTEXT})?"
_REALM = f"(?:{_LABEL}\\.)+{_LABEL}"

#: The whole grammar (any of its three forms), anchored.
NAI_PATTERN = f"^(?:{_USERNAME}(?:@{_REALM})?|@{_REALM})$"
#: ``utf8-username "@" utf8-realm`` only: what mipvpn's users are (topology, REST path).
USER_AT_REALM_PATTERN = f"^{_USERNAME}@{_REALM}$"

_NAI = re.compile(NAI_PATTERN)
_USER_AT_REALM = re.compile(USER_AT_REALM_PATTERN)
_ATEXT_RE = re.compile(_ATEXT)
_RTEXT_RE = re.compile(_RTEXT)


def is_valid(nai: str, *, need_realm: bool = False) -> bool:
    """``nai`` is an RFC 7542 NAI of at most 253 octets (``user@realm`` if
    ``need_realm``)."""
    if not nai or len(nai) > MAX_OCTETS or len(nai.encode("utf-8", "surrogatepass")) > \
            MAX_OCTETS:
        return False
    return (_USER_AT_REALM if need_realm else _NAI).fullmatch(nai) is not None


def problem(nai: str, *, need_realm: bool = False) -> str | None:
    """None if :func:`is_valid`; else why not, in words that never repeat the input's
    characters (a code point is named as ``U+XXXX``), so the reason is safe to log
    or answer."""
    if is_valid(nai, need_realm=need_realm):
        return None
    if not nai:
        return "empty NAI"
    octets = len(nai.encode("utf-8", "surrogatepass"))
    if octets > MAX_OCTETS:
        return f"NAI is {octets} octets (at most {MAX_OCTETS})"
    user, at, realm = nai.partition("@")
    if need_realm and not at:
        return "NAI has no realm (user@realm)"
    if need_realm and not user:
        return "NAI has no username before '@'"
    if user:
        why = _part_problem(user, "username", _ATEXT_RE, allow_hyphen_ends=True)
        if why:
            return why
    if at:
        why = _part_problem(realm, "realm", _RTEXT_RE, allow_hyphen_ends=False)
        if why:
            return why
        if "." not in realm:
            return "realm needs at least two labels (RFC 7542 utf8-realm)"
    return "not an RFC 7542 NAI"


def _part_problem(part: str, what: str, char: re.Pattern[str], *,
                  allow_hyphen_ends: bool) -> str | None:
    for i, c in enumerate(part):
        if c != "." and not (c == "-" or char.fullmatch(c)):
            return f"character U+{ord(c):04X} not allowed in the {what} (position {i})"
    pieces = part.split(".")
    if any(not p for p in pieces):
        return f"empty {what} {'label' if what == 'realm' else 'part'} (leading, " \
               "trailing or double '.')"
    if not allow_hyphen_ends and any(p.startswith("-") or p.endswith("-") for p in pieces):
        return "realm label starts or ends with '-'"
    return None
