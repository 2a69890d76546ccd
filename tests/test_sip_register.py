"""REGISTER with digest (RFC 8760) and refresh, against a tiny registrar in the test (UDP on 127.0.0.1)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import vcore
from vcore.sip import SipSettings
from vcore.sip.auth import DigestVerifier
from vcore.sip.message import SipMessage, Via, parse_message
from vcore.sip.ua import response_to

from .call_helpers import T, run, wait_for


class Registrar(asyncio.DatagramProtocol):
    """Challenges every REGISTER without a good answer, binds the contact for ``grant`` seconds."""

    def __init__(self, users: dict[str, str], grant: int, algorithm: str = "SHA-256",
                 nat: tuple[str, int] | None = None) -> None:
        self.nat = nat  # the address a NAT in between would show the registrar (received/rport, RFC 3581)
        self.verifier = DigestVerifier("vcore.test", users, algorithm=algorithm)
        self.grant = grant
        self.requests: list[SipMessage] = []
        self.bindings: dict[str, tuple[str, int]] = {}
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        request = parse_message(data)
        self.requests.append(request)
        if self.nat is not None:
            via = request.top_via
            request.replace_top_via(Via(via.transport, via.host, via.port,
                                        {**via.params, "received": self.nat[0], "rport": str(self.nat[1])}))
        header = request.get("Authorization")
        user = self.verifier.verify(header, "REGISTER") if header else None
        if user is None:
            reply = response_to(request, 401, "Unauthorized", to_tag="reg",
                                extra=[("WWW-Authenticate", self.verifier.challenge())])
        else:
            expires = int(request.get("Expires") or "0")
            contact = request.get("Contact") or ""
            if expires:
                self.bindings[user] = (contact, expires)
            else:
                self.bindings.pop(user, None)
            granted = min(expires, self.grant)
            reply = response_to(request, 200, "OK", to_tag="reg",
                                extra=[("Contact", f"{contact};expires={granted}")] if expires else [])
        self.transport.sendto(reply.serialize(), addr)


async def _registrar(**kw: Any) -> tuple[Registrar, Any, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: Registrar(**kw), local_addr=("127.0.0.1", 0))
    return proto, transport, transport.get_extra_info("sockname")[1]


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_register_with_digest_refresh_and_unregister(algorithm: str) -> None:
    async def scenario() -> None:
        reg, transport, port = await _registrar(users={"kiosk7": "pw"}, grant=6, algorithm=algorithm)
        try:
            kiosk = vcore.Terminal("Kiosk 7", allow_plaintext=True, listen=False,
                                   sip=SipSettings(transport="udp", registrar=f"sip:127.0.0.1:{port}",
                                                   username="kiosk7", password="pw", register_interval=60))
            async with kiosk:
                contact, expires = reg.bindings["kiosk7"]
                assert f":{kiosk.sip_port}" in contact and contact.startswith("<sip:kiosk7@")
                assert expires == 60
                first = len(reg.requests)
                assert first == 2  # challenged once, then accepted
                # refreshed (and authenticated again) within the 6 s granted
                await wait_for(lambda: any(r.get("Authorization") for r in reg.requests[first:]), T)
                assert {r.call_id for r in reg.requests} == {reg.requests[0].call_id}  # RFC 3261 §10.2.4
            assert "kiosk7" not in reg.bindings  # Expires: 0 on close
        finally:
            transport.close()

    run(scenario())


def test_register_with_a_wrong_password_fails_at_start() -> None:
    async def scenario() -> None:
        reg, transport, port = await _registrar(users={"kiosk7": "pw"}, grant=60)
        try:
            kiosk = vcore.Terminal("Kiosk 7", allow_plaintext=True, listen=False,
                                   sip=SipSettings(transport="udp", registrar=f"sip:127.0.0.1:{port}",
                                                   username="kiosk7", password="nope"))
            with pytest.raises(vcore.CallError, match="401"):
                await kiosk.start()
            await kiosk.close()
            assert not reg.bindings
        finally:
            transport.close()

    run(scenario())


def test_register_behind_a_nat_registers_the_public_address() -> None:
    async def scenario() -> None:
        reg, transport, port = await _registrar(users={"kiosk7": "pw"}, grant=600, nat=("203.0.113.5", 40000))
        try:
            kiosk = vcore.Terminal("Kiosk 7", allow_plaintext=True, listen=False,
                                   sip=SipSettings(transport="udp", registrar=f"sip:127.0.0.1:{port}",
                                                   username="kiosk7", password="pw"))
            async with kiosk:
                contact, _ = reg.bindings["kiosk7"]
                assert contact == "<sip:kiosk7@203.0.113.5:40000>", contact  # what the registrar can reach
        finally:
            transport.close()

    run(scenario())
