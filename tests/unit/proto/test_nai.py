"""controller/proto/nai.py: the RFC 7542 §2.2 grammar every NAI door uses."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.proto import nai

_XTRA = "éüßĀ例ユ😀\U0010fffd"      # a few UTF8-xtra-chars of each length
_ATEXT = st.sampled_from("abcXYZ019!#$%&'*+-/=?^_`{|}~" + _XTRA)
_RTEXT = st.sampled_from("abzAZ09" + _XTRA)
_USERNAME = st.lists(st.text(_ATEXT, min_size=1, max_size=8), min_size=1,
                     max_size=3).map(".".join)
_LABEL = st.tuples(_RTEXT, st.text(st.one_of(_RTEXT, st.just("-")), max_size=6),
                   _RTEXT).map(lambda t: t[0] + (t[1] + t[2] if t[1] else ""))
_REALM = st.lists(_LABEL, min_size=2, max_size=4).map(".".join)
#: ``user@realm`` NAIs, built from the grammar (hypothesis' ``from_regex`` is far
#: too slow on the full UTF8-xtra-char class), for the codecs' property tests.
USER_AT_REALM_NAIS = st.builds(lambda u, r: f"{u}@{r}", _USERNAME, _REALM)
#: Valid NAIs, any of the three forms.
NAIS = st.one_of(USER_AT_REALM_NAIS, _USERNAME, _REALM.map(lambda r: "@" + r))

VALID = [
    "alice@home.example",
    "bob.smith@a.b-c.example",
    "user0@home.example",
    "fred=?#$&*+-/^smith@bigco.com",
    "eng!nancy@bigu.edu",
    "eng%nancy@bigu.edu",
    "{o'neil}|`~_@x9.example",
    "müller@bücher.example",               # UTF-8 (UTF8-xtra-char) in both parts
    "ユーザー@例え.テスト",
    "😀@emoji.example",
    "alice",                               # utf8-username alone
    "@home.example",                       # "@" utf8-realm alone
    "a@" + ".".join(["b" * 61] * 4),       # 2 + 4*61 + 3 = 249 octets
    "é" * 100 + "@" + "e" * 50 + ".x",     # 200 + 1 + 52 = 253 octets
]

INVALID = [
    ("", "empty"),
    ("<img src=x onerror=alert(1)>@home.example", "markup"),
    ("alice@<b>.example", "markup in the realm"),
    ('"alice"@home.example', "quotes"),
    ("al ice@home.example", "space"),
    ("alice@home .example", "space in the realm"),
    ("alice\n@home.example", "LF"),
    ("alice\r\nINFO forged@home.example", "CR LF"),
    ("alice\x00@home.example", "NUL"),
    ("alice\x1b[31m@home.example", "escape sequence"),
    ("alice\x7f@home.example", "DEL"),
    ("alice\x85@home.example", "C1 control NEL"),
    ("alice\u2028@home.example", "line separator"),
    ("alice\u202e@home.example", "bidi override"),
    ("alice\u200b@home.example", "zero-width space"),
    ("alice\u00a0@home.example", "no-break space"),
    ("alice@home..example", "empty realm label"),
    ("alice@.home.example", "leading empty realm label"),
    ("alice@home.example.", "trailing dot"),
    ("alice@-home.example", "label starts with '-'"),
    ("alice@home-.example", "label ends with '-'"),
    ("alice@home_1.example", "underscore in the realm"),
    ("alice@home", "single-label realm"),
    ("alice@", "empty realm"),
    ("@", "nothing"),
    (".alice@home.example", "leading dot in the username"),
    ("al..ice@home.example", "double dot in the username"),
    ("alice.@home.example", "trailing dot in the username"),
    ("a@b@home.example", "two '@'"),
    ("a(b)@home.example", "parentheses"),
    ("a,b;c:d@home.example", "specials"),
    ("a\\b@home.example", "backslash"),
    ("a" * 249 + "@b.cd", "254 octets"),
    ("é" * 101 + "@" + "e" * 50 + ".x", "255 octets, 153 characters"),
]


@pytest.mark.parametrize("text", VALID)
def test_valid(text: str) -> None:
    assert len(text.encode()) <= 253
    assert nai.is_valid(text)
    assert nai.problem(text) is None


@pytest.mark.parametrize("text, why", INVALID, ids=[w for _, w in INVALID])
def test_invalid(text: str, why: str) -> None:
    assert not nai.is_valid(text), why
    reason = nai.problem(text)
    assert reason
    # the reason never repeats the input's characters (safe to log and to answer)
    for c in set(text) - set("abcdefghijklmnopqrstuvwxyz.@-'()0123456789 "):
        assert c not in reason, (c, reason)


def test_need_realm() -> None:
    assert nai.is_valid("alice@home.example", need_realm=True)
    for text in ("alice", "@home.example"):
        assert nai.is_valid(text) and not nai.is_valid(text, need_realm=True)
        assert nai.problem(text, need_realm=True)


def test_reasons_name_the_defect() -> None:
    assert "U+003C" in (nai.problem("<x>@home.example") or "")
    assert "254 octets" in (nai.problem("a" * 249 + "@b.cd") or "")
    assert "empty realm label" in (nai.problem("a@b..c") or "")
    assert "two labels" in (nai.problem("a@home") or "")
    assert "U+000A" in (nai.problem("a\n@b.c") or "")


def test_the_rest_pattern_is_the_same_grammar() -> None:
    """``adapters.auth.NAI_PATH`` validates with pydantic's regex engine: the pattern
    must mean the same there as here."""
    from typing import Annotated

    from pydantic import Field, TypeAdapter, ValidationError

    checker = TypeAdapter(Annotated[str, Field(pattern=nai.USER_AT_REALM_PATTERN)])
    for text in VALID + [t for t, _ in INVALID]:
        try:
            checker.validate_python(text)
            accepted = True
        except ValidationError:
            accepted = False
        assert accepted == bool(re.fullmatch(nai.USER_AT_REALM_PATTERN, text)), text
        # the octet bound is the one thing a pattern cannot say
        assert nai.is_valid(text, need_realm=True) == (accepted and len(text.encode()) <= 253)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gets_a_verdict_and_a_reason(text: str) -> None:
    ok = nai.is_valid(text)
    assert (nai.problem(text) is None) == ok
    if ok:   # nothing a valid NAI holds can break a line, open a tag or turn text
        assert not any(c in text for c in "\r\n\t\x00<>\"\\ ")
        assert not any(unicodedata.category(c) in ("Cc", "Cs", "Zs", "Zl", "Zp")
                       or unicodedata.bidirectional(c) in ("LRE", "RLE", "LRO", "RLO",
                                                           "PDF", "LRI", "RLI", "FSI",
                                                           "PDI")
                       for c in text)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(min_codepoint=0x80), min_size=1, max_size=3))
def test_non_ascii_letters_pass_invisible_and_control_ones_do_not(part: str) -> None:
    text = f"u{part}@r{part}.example"
    bad = any(unicodedata.category(c) in ("Cc", "Cs", "Zs", "Zl", "Zp") for c in part)
    if bad:
        assert not nai.is_valid(text)


@settings(max_examples=200, deadline=None)
@given(USER_AT_REALM_NAIS)
def test_generated_nais_are_valid_and_quiet(text: str) -> None:
    assert nai.is_valid(text) and nai.is_valid(text, need_realm=True)
    assert text.count("@") == 1


@settings(max_examples=200, deadline=None)
@given(NAIS)
def test_generated_nais_of_every_form_are_valid(text: str) -> None:
    assert nai.is_valid(text)
