"""Gatekeeper RAS: message round trips and a RasClient against an in-process gatekeeper."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcore.errors import VcoreError
from vcore.h323.errors import SignallingTimeout
from vcore.h323.messages import Address
from vcore.h323.ras import (
    RasClient,
    RasRejected,
    admission_confirm,
    admission_reject,
    admission_request,
    disengage_confirm,
    disengage_request,
    encode_ras,
    gatekeeper_confirm,
    gatekeeper_request,
    parse_ras,
    registration_confirm,
    registration_reject,
    registration_request,
    unregistration_confirm,
    unregistration_request,
)

A = Address
CALL_ID, CONF_ID = bytes(range(16)), bytes(range(16, 32))

MESSAGES = [
    ("gatekeeperRequest", gatekeeper_request(1, A("127.0.0.1", 40000), ["kiosk-1"])),
    ("gatekeeperConfirm", gatekeeper_confirm(1, A("127.0.0.1", 1719), "GK")),
    ("registrationRequest", registration_request(2, A("127.0.0.1", 1720), A("127.0.0.1", 40000), ["kiosk-1", "100"],
                                                 gatekeeper_id="GK", time_to_live=60)),
    ("registrationRequest", registration_request(3, A("127.0.0.1", 1720), A("127.0.0.1", 40000), [],
                                                 gatekeeper_id="GK", endpoint_id="ep1", time_to_live=60,
                                                 keep_alive=True)),
    ("registrationConfirm", registration_confirm(2, A("127.0.0.1", 1720), "ep1", gatekeeper_id="GK",
                                                 time_to_live=60)),
    ("registrationReject", registration_reject(2, "securityDenial")),
    ("admissionRequest", admission_request(4, "ep1", ["kiosk-1"], call_id=CALL_ID, conference_id=CONF_ID,
                                           call_reference=77, destination=["agent"])),
    ("admissionConfirm", admission_confirm(4, A("127.0.0.2", 1720))),
    ("admissionReject", admission_reject(4)),
    ("disengageRequest", disengage_request(5, "ep1", call_id=CALL_ID, conference_id=CONF_ID, call_reference=77,
                                           answered=False)),
    ("disengageConfirm", disengage_confirm(5)),
    ("unregistrationRequest", unregistration_request(6, A("127.0.0.1", 1720), "ep1", ["kiosk-1"])),
    ("unregistrationConfirm", unregistration_confirm(6)),
]


@pytest.mark.parametrize(("name", "body"), MESSAGES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(MESSAGES)])
def test_ras_roundtrip(name: str, body: Any) -> None:
    message = parse_ras(encode_ras(name, body))
    assert message.name == name and message.body == body and message.sequence == body["requestSeqNum"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_ras_fuzz_only_vcore_errors(data: bytes) -> None:
    try:
        parse_ras(data)
    except VcoreError:
        pass


class FakeGatekeeper(asyncio.DatagramProtocol):
    """Answers GRQ/RRQ/ARQ/DRQ/URQ like a permissive gatekeeper with one registered alias, 'agent'."""

    def __init__(self, silent: bool = False) -> None:
        self.silent = silent
        self.received: list[str] = []
        self.keepalives = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.client: tuple[str, int] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_ras(data)
        self.received.append(message.name)
        self.client = addr
        seq = message.sequence or 0
        if self.silent or message.name.endswith("Confirm"):
            return
        reply: tuple[str, Any]
        if message.name == "gatekeeperRequest":
            reply = ("gatekeeperConfirm", gatekeeper_confirm(seq, A("127.0.0.1", self.port), "vcoreGK"))
        elif message.name == "registrationRequest":
            if message.body["keepAlive"]:
                self.keepalives += 1
                assert message.body["endpointIdentifier"] == "ep-1" and "terminalAlias" not in message.body
            elif message.body.get("terminalAlias") == [("h323-ID", "banned")]:
                reply = ("registrationReject", registration_reject(seq, "securityDenial"))
                assert self.transport is not None
                self.transport.sendto(encode_ras(*reply), addr)
                return
            reply = ("registrationConfirm", registration_confirm(seq, A("127.0.0.1", 1720), "ep-1",
                                                                 gatekeeper_id="vcoreGK", time_to_live=1))
        elif message.name == "admissionRequest":
            if message.body.get("destinationInfo") == [("h323-ID", "agent")]:
                reply = ("admissionConfirm", admission_confirm(seq, A("127.0.0.9", 1720)))
            else:
                reply = ("admissionReject", admission_reject(seq, "calledPartyNotRegistered"))
        elif message.name == "disengageRequest":
            reply = ("disengageConfirm", disengage_confirm(seq))
        else:
            reply = ("unregistrationConfirm", unregistration_confirm(seq))
        assert self.transport is not None
        self.transport.sendto(encode_ras(*reply), addr)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, name: str, body: Any) -> None:
        assert self.transport is not None and self.client is not None
        self.transport.sendto(encode_ras(name, body), self.client)


async def _gatekeeper(silent: bool = False) -> tuple[asyncio.DatagramTransport, FakeGatekeeper]:
    loop = asyncio.get_running_loop()
    transport, gk = await loop.create_datagram_endpoint(lambda: FakeGatekeeper(silent), local_addr=("127.0.0.1", 0))
    return transport, gk


def test_register_admit_disengage_unregister() -> None:
    async def scenario() -> None:
        transport, gk = await _gatekeeper()
        unregistered: list[bool] = []
        async with RasClient(A("127.0.0.1", gk.port), A("127.0.0.1", 1720), ["kiosk-1"],
                             on_unregistered=lambda: unregistered.append(True)) as ras:
            assert await ras.discover() == "vcoreGK"
            registration = await ras.register(time_to_live=1)
            assert (registration.endpoint_id, registration.gatekeeper_id, registration.time_to_live) == (
                "ep-1", "vcoreGK", 1)
            while gk.keepalives < 1:  # a lightweight RRQ arrives before the time to live runs out
                await asyncio.sleep(0.05)
            assert await ras.admit(call_id=CALL_ID, conference_id=CONF_ID, call_reference=5,
                                   destination=["agent"]) == A("127.0.0.9", 1720)
            with pytest.raises(RasRejected, match="rejected admissionRequest: calledPartyNotRegistered") as info:
                await ras.admit(call_id=CALL_ID, conference_id=CONF_ID, call_reference=6, destination=["nobody"])
            assert info.value.reason == "calledPartyNotRegistered"
            await ras.disengage(call_id=CALL_ID, conference_id=CONF_ID, call_reference=5, answered=False)
            await ras.unregister()
            assert ras.registration is None
            # a gatekeeper-initiated URQ is confirmed and reported
            gk.send("unregistrationRequest", unregistration_request(99, A("127.0.0.1", 1720), "ep-1"))
            while not unregistered:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
        transport.close()
        assert gk.received[:3] == ["gatekeeperRequest", "registrationRequest", "registrationRequest"]
        assert gk.received[-1] == "unregistrationConfirm"
        for name in ("admissionRequest", "disengageRequest", "unregistrationRequest"):
            assert name in gk.received

    asyncio.run(scenario())


def test_registration_rejected_and_silent_gatekeeper() -> None:
    async def scenario() -> None:
        transport, gk = await _gatekeeper()
        async with RasClient(A("127.0.0.1", gk.port), A("127.0.0.1", 1720), ["banned"]) as ras:
            with pytest.raises(RasRejected, match="securityDenial"):
                await ras.register()
        transport.close()
        transport, gk = await _gatekeeper(silent=True)
        async with RasClient(A("127.0.0.1", gk.port), A("127.0.0.1", 1720), ["kiosk-1"], timeout=0.1,
                             retries=2) as ras:
            with pytest.raises(SignallingTimeout, match="did not answer gatekeeperRequest after 3 attempts"):
                await ras.discover()
        transport.close()
        assert gk.received == ["gatekeeperRequest"] * 3

    asyncio.run(scenario())
