"""Calls relayed by a SIP server over TLS (docs/sip.md, "Calls relayed by a SIP server").

A bare TLS client stands for the server (its certificate names host 127.0.0.1, from the installation's
CA) or for another station; it sends one INVITE with a ``P-Asserted-Identity`` and reads the answers.
The trusted-hop rule: only a configured server's hop may assert the caller; the allow-list or the role
rules then apply to the asserted identity; ``Call.security()`` says the identity was the server's word.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from pathlib import Path
from typing import Any

import pytest

import vcore
from vcore.h323.messages import PCMU
from vcore.sip import SipSettings

from .call_helpers import T, make_pki, run, terminal
from .sip_peers import LOCALHOST, issue_server_certificate

_OFFER = (f"v=0\r\no=relay 1 1 IN IP4 {LOCALHOST}\r\ns=-\r\nc=IN IP4 {LOCALHOST}\r\nt=0 0\r\n"
          "m=audio 40000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
          "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e\r\n")


class _TlsHop:
    """A TLS connection to vcore's SIP port with ``pem`` as client certificate: sends an INVITE, reads answers."""

    def __init__(self, base: Path, pem: Path) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False  # vcore's terminal certificates name terminals, not hosts
        self.ctx.load_verify_locations(base / "ca" / "ca.cert.pem")
        self.ctx.load_cert_chain(pem)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection(LOCALHOST, port, ssl=self.ctx)

    async def invite(self, port: int, *, from_user: str, asserted: str | None) -> None:
        assert self.writer is not None
        local = self.writer.get_extra_info("sockname")
        lines = [f"INVITE sip:caf-agent@{LOCALHOST}:{port};transport=tls SIP/2.0",
                 f"Via: SIP/2.0/TLS {LOCALHOST}:{local[1]};branch=z9hG4bK-relay-{local[1]};rport",
                 f"Record-Route: <sip:{LOCALHOST}:{local[1]};transport=tls;lr>",
                 f"From: \"Someone\" <sip:{from_user}@{LOCALHOST}>;tag=relay1", f"To: <sip:caf-agent@{LOCALHOST}>",
                 f"Call-ID: relay-{local[1]}@{LOCALHOST}", "CSeq: 1 INVITE", "Max-Forwards: 69",
                 f"Contact: <sip:{from_user}@{LOCALHOST}:{local[1]};transport=tls>", "Content-Type: application/sdp"]
        if asserted is not None:
            lines.append(f"P-Asserted-Identity: \"Bob Agent\" <{asserted}>")
        body = _OFFER.encode()
        lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()

    async def final_status(self) -> int:
        """The status of the first final response to the INVITE."""
        assert self.reader is not None
        while True:
            head = (await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), T)).decode()
            length = re.search(r"(?im)^(?:Content-Length|l):\s*(\d+)", head)
            if length and int(length.group(1)):
                await self.reader.readexactly(int(length.group(1)))
            status = int(head.split(" ", 2)[1])
            if status >= 200:
                return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass


def _agent(base: Path, **kw: Any) -> vcore.Terminal:
    return terminal(base, "CAF agent", video=None, formats=(PCMU,), **kw)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    pki_base = make_pki(tmp_path)
    issue_server_certificate(pki_base / "ca", "SIP server", [LOCALHOST], pki_base / "sip.pem")
    return pki_base


def test_trusted_server_asserts_the_caller(base: Path) -> None:
    """From the configured server's hop, P-Asserted-Identity names the caller; the allow-list admits it by
    user; the call's security marks the identity as asserted by the server, not end to end."""

    async def scenario() -> None:
        sip = SipSettings(transport="tls", trusted_proxies=(f"sips:{LOCALHOST}",))
        async with _agent(base, sip=sip, allow=["bob"]) as agent:
            hop = _TlsHop(base, base / "sip.pem")
            await hop.open(agent.sip_port)
            try:
                await hop.invite(agent.sip_port, from_user="not-bob", asserted=f"sip:bob@{LOCALHOST}")
                incoming = await asyncio.wait_for(agent.incoming().__anext__(), T)
                call = await incoming.answer()
                assert await hop.final_status() == 200
                identity = call.security()["caller_identity"]
                assert identity == {"uri": f"sip:bob@{LOCALHOST}", "asserted_by": f"sips:{LOCALHOST}",
                                    "header": "P-Asserted-Identity", "end_to_end": False}, identity
                assert "readable by the SIP server" in call.security()["srtp_keys"]
                assert call.security()["peer_certificate"] == "SIP server"
                assert call.peer == f"sip:bob@{LOCALHOST} (via SIP server)" and "bob" in incoming.aliases
                await call.hangup()
            finally:
                await hop.close()

    run(scenario())


@pytest.mark.parametrize("case", ["not-allowed", "no-role", "untrusted-hop", "not-configured"])
def test_relayed_callers_refused(base: Path, case: str) -> None:
    """403 and a refusal naming why: an asserted caller off the allow-list; an asserted caller under a role
    policy (it has no certificate, hence no role); a P-Asserted-Identity from a station (not a configured
    server: ignored, the end-to-end rule applies); the server's hop when no server is configured (its
    certificate holds no caller: the end-to-end rule refuses it)."""
    trusted = () if case == "not-configured" else (f"sips:{LOCALHOST}",)
    kw: dict[str, Any] = {"sip": SipSettings(transport="tls", trusted_proxies=trusted)}
    if case in ("not-allowed", "untrusted-hop"):
        kw["allow"] = ["bob", "Murat kiosk"] if case == "untrusted-hop" else ["bob"]
    pem = base / ("Murat kiosk.pem" if case == "untrusted-hop" else "sip.pem")
    asserted = f"sip:{'alice' if case == 'not-allowed' else 'bob'}@{LOCALHOST}"
    expected = {"not-allowed": "not on the allow-list", "no-role": "no certificate, hence no role",
                "untrusted-hop": "claims 'bob' in From", "not-configured": "certificate with no alias"}[case]

    async def scenario() -> None:
        async with _agent(base, **kw) as agent:
            hop = _TlsHop(base, pem)
            await hop.open(agent.sip_port)
            try:
                await hop.invite(agent.sip_port, from_user="bob", asserted=asserted)
                assert await hop.final_status() == 403
                assert any(expected in r.detail for r in agent.refused), [r.detail for r in agent.refused]
                assert agent.calls == []
            finally:
                await hop.close()

    run(scenario())


def test_registrar_certificate_must_name_its_host(base: Path) -> None:
    """A TLS registrar whose certificate (from the trust anchors, but a station's) does not name the host
    dialled gets neither the REGISTER nor the digest: the terminal does not start, and says why."""

    async def scenario() -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(base / "Other kiosk.pem")
        received: list[bytes] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                received.append(await reader.read(4096))
            except (OSError, ssl.SSLError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, LOCALHOST, 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        try:
            sip = SipSettings(transport="tls", registrar=f"sips:{LOCALHOST}:{port}", username="caf-agent",
                              password="Agent-pw1")
            with pytest.raises(vcore.VcoreError, match="does not name host 127.0.0.1"):
                async with _agent(base, sip=sip):
                    pass
        finally:
            server.close()
            await server.wait_closed()
        assert not any(b"REGISTER" in r for r in received), received

    run(scenario())
