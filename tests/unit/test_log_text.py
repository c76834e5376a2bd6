"""Issue 11: peer-controlled strings in log lines go through ``controller.logtext.
log_text``: one line, no CR/LF, no raw markup, no terminal or bidi controls."""

from __future__ import annotations

import asyncio
import logging

import pytest

from controller.logtext import log_text
from controller.proto import diameter as d

FORGED = "alice\r\nmipvpn.handover INFO registration of root@home.example: accepted"


@pytest.mark.parametrize("raw, shown", [
    ("alice@home.example", "alice@home.example"),
    ("müller@bücher.example", "müller@bücher.example"),
    ("a\r\nb", "a\\r\\nb"),
    ("<script>", "\\x3cscript\\x3e"),
    ("tab\there", "tab\\there"),
    ("esc\x1b[31m", "esc\\x1b[31m"),
    ("nul\x00del\x7f", "nul\\x00del\\x7f"),
    ("nel\x85", "nel\\x85"),
    ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
    ("rlo\u202eevil", "rlo\\u202eevil"),
    ("back\\slash", "back\\\\slash"),
    ("x" * 300, "x" * 256 + "...(+44 chars)"),
])
def test_log_text(raw: str, shown: str) -> None:
    assert log_text(raw) == shown


def test_log_text_of_objects() -> None:
    assert log_text(ValueError("bad\nline")) == "bad\\nline"
    assert log_text(None) == "None"


def test_a_handover_log_line_with_crlf_and_markup_stays_one_escaped_line(
        caplog: pytest.LogCaptureFixture) -> None:
    """A record put straight into the HandoverLog (bypassing the decoder): its log line
    is still one line without markup."""
    from controller.core.handover import HandoverLog
    from controller.metrics import log_handover
    log = HandoverLog()
    log.mark(FORGED + "<b>", "rrq_at_fa", 1.0, {"fa": "fa1\n", "previous_fa": ""})
    log.mark(FORGED + "<b>", "rrp_sent", 1.1, {"accepted": False, "code": 67})
    with caplog.at_level(logging.INFO, logger="mipvpn.handover"):
        log_handover(log.records[0])
    (line,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in line and "\r" not in line and "<b>" not in line
    assert line.startswith("registration of alice\\r\\nmipvpn.handover INFO")


def test_a_peer_identity_with_crlf_and_markup_is_logged_escaped(
        caplog: pytest.LogCaptureFixture) -> None:
    """A CER whose Origin-Host/Realm carry CR LF and markup (ASCII, so a valid
    DiameterIdentity to the codec): the 'peer connected' line is one escaped line."""
    from controller.adapters.diameter_peer import DiameterNode
    host = "evil.test\r\nmipvpn.runtime INFO forged <script>x</script>"

    async def main() -> None:
        node = DiameterNode("aaah.home.example", "home.example")
        port = await node.listen("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(d.encode(d.Cer(host, "realm\n<b>", ("127.0.0.1",),
                                    auth_application_ids=(d.MIP4_APPLICATION_ID,),
                                    hop_by_hop=1, end_to_end=1)))
        head = await asyncio.wait_for(reader.readexactly(20), 5)
        await reader.readexactly(d.parse_header(head).length - 20)
        await asyncio.sleep(0.05)
        writer.close()
        await node.close()

    with caplog.at_level(logging.DEBUG, logger="mipvpn.diameter.peer"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if "evil.test" in r.getMessage()]
    assert lines, [r.getMessage() for r in caplog.records]
    for line in lines:
        assert "\n" not in line and "\r" not in line and "<" not in line, line
