"""RAS from a hostile gatekeeper: every value vcore uses is range-checked (docs/security.md, finding 6).

The gatekeeper here is a UDP responder on 127.0.0.1 (as in test_h323_ras.py) whose
answers each test rewrites. A reply pycrate can encode goes on the wire as PER; one
it cannot (a value outside its ASN.1 type, a missing mandatory field, a float where
an INTEGER belongs) is sent as a marker that the patched ``parse_ras`` turns back
into that :class:`RasMessage`: what a decoder bug or a newer schema could hand vcore.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcore.errors import VcoreError
from vcore.h323 import ras as ras_module
from vcore.h323.errors import SignallingError, SignallingParseError, SignallingTimeout
from vcore.h323.gatekeeper import GatekeeperLink
from vcore.h323.messages import Address
from vcore.h323.ras import (
    RasClient,
    RasMessage,
    RasRejected,
    admission_confirm,
    admission_reject,
    disengage_confirm,
    disengage_request,
    encode_ras,
    gatekeeper_confirm,
    parse_ras,
    registration_confirm,
    registration_reject,
    unregistration_confirm,
    unregistration_request,
)

A = Address
CALL_ID, CONF_ID = bytes(range(16)), bytes(range(16, 32))
CALLEE = A("127.0.0.9", 1720)
Reply = tuple[str, Any] | RasMessage  # (name, body) PER-encoded, or a RasMessage injected past the decoder
Answer = Callable[[int, Any], list[Reply]]


class Gatekeeper(asyncio.DatagramProtocol):
    """A permissive gatekeeper (endpoint ``ep-1``, ACF to CALLEE); ``answers[request]`` overrides a reply."""

    def __init__(self) -> None:
        self.received: list[RasMessage] = []
        self.answers: dict[str, Answer] = {}
        self.injected: list[RasMessage] = []
        self.transport: Any = None
        self.client: tuple[str, int] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    @property
    def port(self) -> int:
        return int(self.transport.get_extra_info("sockname")[1])

    def names(self) -> list[str]:
        return [m.name for m in self.received]

    def default(self, name: str, seq: int) -> list[Reply]:
        return [{
            "gatekeeperRequest": ("gatekeeperConfirm", gatekeeper_confirm(seq, A("127.0.0.1", self.port), "gk")),
            "registrationRequest": ("registrationConfirm", registration_confirm(
                seq, A("127.0.0.1", 1720), "ep-1", gatekeeper_id="gk", time_to_live=60)),
            "admissionRequest": ("admissionConfirm", admission_confirm(seq, CALLEE)),
            "disengageRequest": ("disengageConfirm", disengage_confirm(seq)),
            "unregistrationRequest": ("unregistrationConfirm", unregistration_confirm(seq)),
        }[name]]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_ras(data)
        self.received.append(message)
        self.client = addr
        if message.name.endswith("Confirm"):
            return
        seq = message.sequence or 0
        answer = self.answers.get(message.name)
        for reply in answer(seq, message.body) if answer else self.default(message.name, seq):
            self.send(reply)

    def send(self, reply: Reply) -> None:
        """Send one reply to the client (encoded, or injected when it is a RasMessage or pycrate refuses it)."""
        if isinstance(reply, tuple):
            try:
                data = encode_ras(*reply)
            except SignallingParseError:
                reply = RasMessage(*reply)
        if isinstance(reply, RasMessage):
            self.injected.append(reply)
            data = b"INJECT%d" % (len(self.injected) - 1)
        assert self.client is not None
        self.transport.sendto(data, self.client)

    def later(self, delay: float, reply: Reply) -> None:
        asyncio.get_running_loop().call_later(delay, self.send, reply)

    def parse(self, data: bytes) -> RasMessage:
        """The client's ``parse_ras`` while the gatekeeper runs."""
        if data.startswith(b"INJECT"):
            return self.injected[int(data[6:])]
        return parse_ras(data)


@contextlib.asynccontextmanager
async def gatekeeper_and_client(timeout: float = 0.3, retries: int = 1,
                                **kw: Any) -> AsyncIterator[tuple[Gatekeeper, RasClient]]:
    """A gatekeeper and a started client; no task or callback may fail meanwhile (loop errors are asserted)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    _, gk = await loop.create_datagram_endpoint(Gatekeeper, local_addr=("127.0.0.1", 0))
    try:
        with mock.patch.object(ras_module, "parse_ras", gk.parse):
            async with RasClient(A("127.0.0.1", gk.port), A("127.0.0.1", 1720), ["kiosk-1"], timeout=timeout,
                                 retries=retries, **kw) as ras:
                yield gk, ras
    finally:
        gk.transport.close()
        loop.set_exception_handler(None)
    assert not errors, errors


def rcf_with(**fields: Any) -> Answer:
    """An RCF answer with these fields set (``None``: removed)."""
    def answer(seq: int, _: Any) -> list[Reply]:
        body = registration_confirm(seq, A("127.0.0.1", 1720), "ep-1", gatekeeper_id="gk", time_to_live=60)
        for key, value in fields.items():
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        return [RasMessage("registrationConfirm", body)]  # injected: the exact value reaches the client
    return answer


async def admit(ras: RasClient, reference: int = 5) -> Address:
    return await ras.admit(call_id=CALL_ID, conference_id=CONF_ID, call_reference=reference, destination=["agent"])


# --------------------------------------------------------------------------- RCF timeToLive


def test_huge_time_to_live_is_taken_as_one_day(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with gatekeeper_and_client() as (gk, ras):
            gk.answers["registrationRequest"] = lambda seq, _: [("registrationConfirm", registration_confirm(
                seq, A("127.0.0.1", 1720), "ep-1", time_to_live=4294967295))]  # on the wire: 136 years
            with caplog.at_level(logging.WARNING, "vcore.h323.ras"):
                registration = await ras.register()
            assert registration.time_to_live == 86400 and ras._keepalive is not None
            assert "timeToLive 4294967295 s is taken as 86400 s" in caplog.text

    asyncio.run(scenario())


@pytest.mark.parametrize("ttl", [0, -1, 2**32, 2**200, 60.0, math.nan, math.inf, "60", True, b"\x3c"],
                         ids=repr)
def test_bad_time_to_live_is_refused(ttl: Any) -> None:
    async def scenario() -> None:
        async with gatekeeper_and_client() as (gk, ras):
            gk.answers["registrationRequest"] = rcf_with(timeToLive=ttl)
            with pytest.raises(SignallingParseError, match="RCF: timeToLive .* is not an integer in 1..4294967295"):
                await ras.register()
            assert ras.registration is None and ras._keepalive is None  # nothing half-registered
            del gk.answers["registrationRequest"]
            assert (await ras.register()).time_to_live == 60  # the client keeps working

    asyncio.run(scenario())


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(("field", "value"), [
    ("endpointIdentifier", ""), ("endpointIdentifier", "e" * 129), ("endpointIdentifier", "ep\n1 forged log line"),
    ("endpointIdentifier", "ep\x1b[31m"), ("endpointIdentifier", "ep\u202e1"), ("endpointIdentifier", "ep\x00"),
    ("endpointIdentifier", 42), ("endpointIdentifier", b"ep-1"), ("gatekeeperIdentifier", "gk\r\n"),
    ("gatekeeperIdentifier", "g" * 129), ("gatekeeperIdentifier", ["gk"]),
], ids=repr)
def test_bad_identifiers_in_rcf_are_refused(field: str, value: Any) -> None:
    async def scenario() -> None:
        async with gatekeeper_and_client() as (gk, ras):
            gk.answers["registrationRequest"] = rcf_with(**{field: value})
            with pytest.raises(SignallingParseError, match=f"RCF: {field} .* is not 1..128 printable characters"):
                await ras.register()
            assert ras.registration is None

    asyncio.run(scenario())


def test_rcf_without_endpoint_identifier_and_bad_gcf_identifier() -> None:
    async def scenario() -> None:
        async with gatekeeper_and_client() as (gk, ras):
            gk.answers["registrationRequest"] = rcf_with(endpointIdentifier=None)
            with pytest.raises(SignallingParseError, match="RCF has no endpointIdentifier"):
                await ras.register()
            gk.answers["gatekeeperRequest"] = lambda seq, _: [("gatekeeperConfirm", gatekeeper_confirm(
                seq, A("127.0.0.1", gk.port), "gk\n2024-01-01 CRITICAL forged"))]  # encodable: on the wire
            with pytest.raises(SignallingParseError, match="GCF: gatekeeperIdentifier"):
                await ras.discover()
            assert ras.gatekeeper_id is None

    asyncio.run(scenario())


# --------------------------------------------------------------------------- ACF


@pytest.mark.parametrize("where", [
    A("0.0.0.0", 1720), A("0.1.2.3", 1720), A("255.255.255.255", 1720), A("224.0.0.1", 1720),
    A("239.255.255.250", 1720), A("240.0.0.1", 1720), A("::", 1720), A("ff02::1", 1720),
    A("::ffff:0.0.0.0", 1720), A("::ffff:224.0.0.5", 1720),
], ids=lambda a: f"{a.host}:{a.port}")
def test_acf_with_an_unusable_address_is_refused(where: Address) -> None:
    async def scenario() -> None:
        async with gatekeeper_and_client() as (gk, ras):
            await ras.register()
            gk.answers["admissionRequest"] = lambda seq, _: [("admissionConfirm", admission_confirm(seq, where))]
            with pytest.raises(SignallingError, match="ACF names .*: not a unicast host address") as info:
                await admit(ras)
            assert type(info.value) is SignallingError
            del gk.answers["admissionRequest"]
            assert await admit(ras, 6) == CALLEE  # a later valid ACF still works

    asyncio.run(scenario())


def test_acf_port_zero_refused_and_ipv6_accepted() -> None:
    async def scenario() -> None:
        async with gatekeeper_and_client() as (gk, ras):
            await ras.register()
            gk.answers["admissionRequest"] = lambda seq, _: [("admissionConfirm", admission_confirm(
                seq, A("127.0.0.9", 0)))]
            with pytest.raises(SignallingParseError, match="ACF: port 0 is not an integer in 1..65535"):
                await admit(ras)
            gk.answers["admissionRequest"] = lambda seq, _: [("admissionConfirm", admission_confirm(
                seq, A("2001:db8::5", 1720), bandwidth=0))]
            assert await admit(ras) == A("2001:db8::5", 1720)

    asyncio.run(scenario())


def _acf(seq: int, **fields: Any) -> RasMessage:
    body = admission_confirm(seq, CALLEE)
    body.update(fields)
    return RasMessage("admissionConfirm", {k: v for k, v in body.items() if v is not None})


@pytest.mark.parametrize(("fields", "error", "fragment"), [
    ({"destCallSignalAddress": None}, SignallingError, "ACF names no call signalling address"),
    ({"destCallSignalAddress": ("ipxAddress", {"node": b"\0" * 6})}, SignallingParseError, "is not IP"),
    ({"destCallSignalAddress": "127.0.0.9:1720"}, SignallingParseError, "is not IP"),
    ({"destCallSignalAddress": ("ipAddress", {"ip": b"\x7f\0\0\x09\x01", "port": 1720})}, SignallingParseError,
     "is not 4 bytes"),
    ({"destCallSignalAddress": ("ip6Address", {"ip": b"\x7f\0\0\x09", "port": 1720})}, SignallingParseError,
     "is not 16 bytes"),
    ({"destCallSignalAddress": ("ipAddress", {"ip": "127.0.0.9", "port": 1720})}, SignallingParseError,
     "is not 4 bytes"),
    ({"destCallSignalAddress": ("ipAddress", {"ip": b"\x7f\0\0\x09"})}, SignallingParseError, "port None"),
    ({"destCallSignalAddress": ("ipAddress", {"ip": b"\x7f\0\0\x09", "port": 70000})}, SignallingParseError,
     "port 70000"),
    ({"destCallSignalAddress": ("ipAddress", {"ip": b"\x7f\0\0\x09", "port": "1720"})}, SignallingParseError,
     "port '1720'"),
    ({"bandWidth": -1}, SignallingParseError, "bandWidth -1 is not an integer in 0..4294967295"),
    ({"bandWidth": 2**32}, SignallingParseError, "bandWidth 4294967296"),
    ({"bandWidth": math.nan}, SignallingParseError, "bandWidth nan"),
    ({"bandWidth": None}, SignallingParseError, "bandWidth None"),
], ids=["no-address", "ipx", "str-address", "ip-5-bytes", "ip6-4-bytes", "ip-str", "no-port", "port-70000",
        "port-str", "bandwidth-negative", "bandwidth-2**32", "bandwidth-nan", "no-bandwidth"])
def test_malformed_acf_is_refused(fields: dict[str, Any], error: type[Exception], fragment: str) -> None:
    async def scenario() -> None:
        async with gatekeeper_and_client() as (gk, ras):
            await ras.register()
            gk.answers["admissionRequest"] = lambda seq, _: [_acf(seq, **fields)]
            with pytest.raises(error, match=fragment) as info:
                await admit(ras)
            assert type(info.value) is error

    asyncio.run(scenario())


# --------------------------------------------------------------------------- rejects


@pytest.mark.parametrize("reason", [None, ("_ext_30", b"\x00"), ("a" * 65, 0), "securityDenial", (42, 0),
                                    ("not an identifier", 0), ("securityDenial",)], ids=repr)
def test_reject_reason_missing_or_unknown_is_undefined(reason: Any) -> None:
    async def scenario() -> None:
        async with gatekeeper_and_client() as (gk, ras):
            body = registration_reject(1)
            if reason is None:
                del body["rejectReason"]
            else:
                body["rejectReason"] = reason
            gk.answers["registrationRequest"] = lambda seq, _: [("registrationReject", dict(body, requestSeqNum=seq))]
            with pytest.raises(RasRejected, match="rejected registrationRequest: undefinedReason$") as info:
                await ras.register()
            assert info.value.reason == "undefinedReason" and ras.registration is None

    asyncio.run(scenario())


# --------------------------------------------------------------------------- sequence numbers, RIP


def test_replies_are_matched_by_sequence_number_and_type(caplog: pytest.LogCaptureFixture) -> None:
    """Wrong sequence, a confirm of another request, a non-int or out-of-range sequence: dropped, counted."""
    async def scenario() -> None:
        async with gatekeeper_and_client() as (gk, ras):
            await ras.register()
            other = A("127.0.0.66", 1720)
            gk.answers["admissionRequest"] = lambda seq, _: [
                ("admissionConfirm", admission_confirm(seq % 65535 + 1, other)),  # another request's number
                ("registrationConfirm", registration_confirm(seq, A("127.0.0.1", 1720), "ep-9")),  # wrong type
                RasMessage("admissionConfirm", dict(admission_confirm(seq, other), requestSeqNum=str(seq))),
                RasMessage("admissionConfirm", dict(admission_confirm(seq, other), requestSeqNum=seq + 65536)),
                RasMessage("admissionConfirm", dict(admission_confirm(seq, other), requestSeqNum=float(seq))),
                RasMessage("admissionConfirm", b"not a SEQUENCE"),
                ("admissionConfirm", admission_confirm(seq, CALLEE)),
            ]
            with caplog.at_level(logging.WARNING, "vcore.h323.ras"):
                assert await admit(ras) == CALLEE
            assert ras.dropped == 6 and ras.registration is not None and ras.registration.endpoint_id == "ep-1"
            assert "registrationConfirm" in caplog.text and "does not answer admissionRequest" in caplog.text
            assert "without a requestSeqNum in 1..65535" in caplog.text
            assert gk.names().count("admissionRequest") == 1

    asyncio.run(scenario())


def test_request_in_progress_extends_the_wait_and_bad_delays_are_dropped() -> None:
    async def scenario() -> None:
        async with gatekeeper_and_client(timeout=0.2, retries=0) as (gk, ras):
            await ras.register()

            def slow(seq: int, _: Any) -> list[Reply]:
                gk.later(0.4, ("admissionConfirm", admission_confirm(seq, CALLEE)))
                return [("requestInProgress", {"requestSeqNum": seq, "delay": 600})]

            gk.answers["admissionRequest"] = slow
            assert await admit(ras) == CALLEE  # one ARQ, answered after the timeout, within the RIP's delay
            assert gk.names().count("admissionRequest") == 1 and ras.dropped == 0
            gk.answers["admissionRequest"] = lambda seq, _: [
                RasMessage("requestInProgress", {"requestSeqNum": seq, "delay": delay})
                for delay in (0, -5, 65536, 2**64, 1.5, math.nan, "600", None)]
            with pytest.raises(SignallingTimeout):  # none extends the wait
                await admit(ras)
            assert ras.dropped == 8
            del gk.answers["admissionRequest"]
            gk.send(("requestInProgress", {"requestSeqNum": 7, "delay": 65535}))  # for no pending request
            assert await admit(ras) == CALLEE
            assert ras.dropped == 9

    asyncio.run(scenario())


# --------------------------------------------------------------------------- gatekeeper-initiated DRQ and URQ


def test_gatekeeper_drq_fields_are_checked() -> None:
    async def scenario() -> None:
        calls: list[bytes | None] = []
        async with gatekeeper_and_client(on_disengage=calls.append) as (gk, ras):
            await ras.register()

            def drq(seq: int, **fields: Any) -> RasMessage:
                body = disengage_request(seq, "ep-1", call_id=CALL_ID, conference_id=CONF_ID, call_reference=5,
                                         answered=True)
                body.update(fields)
                return RasMessage("disengageRequest", {k: v for k, v in body.items() if v is not None})

            for bad in (drq(11, callIdentifier={"guid": CALL_ID[:15]}), drq(12, callIdentifier={}),
                        drq(13, callIdentifier={"guid": CALL_ID + b"\0"}), drq(14, callIdentifier=CALL_ID),
                        drq(15, callIdentifier={"guid": CALL_ID.hex()}), drq(16, endpointIdentifier="ep-2"),
                        drq(17, endpointIdentifier=None), drq(18, endpointIdentifier="ep\n"),
                        drq(19, requestSeqNum=0), drq(20, requestSeqNum=None), drq(21, requestSeqNum=True)):
                gk.send(bad)
            gk.send(drq(22))
            gk.send(drq(23, callIdentifier=None))  # no call identifier: reported as None
            gk.send(drq(24, unknownField=1, _ext_40=b"\x01"))  # fields vcore does not use: ignored
            while len(calls) < 3:
                await asyncio.sleep(0.01)
            assert calls == [CALL_ID, None, CALL_ID] and ras.dropped == 11
            confirmed = [m.body["requestSeqNum"] for m in gk.received if m.name == "disengageConfirm"]
            assert confirmed == [22, 23, 24] and ras.registration is not None

    asyncio.run(scenario())


def test_gatekeeper_urq_fields_are_checked() -> None:
    async def scenario() -> None:
        unregistered: list[bool] = []
        async with gatekeeper_and_client(on_unregistered=lambda: unregistered.append(True)) as (gk, ras):
            await ras.register()

            def urq(seq: int, **fields: Any) -> RasMessage:
                body = unregistration_request(seq, A("127.0.0.1", 1720), "ep-1")
                body.update(fields)
                return RasMessage("unregistrationRequest", body)

            for bad in (urq(31, endpointIdentifier="ep-2"), urq(32, endpointIdentifier="ep-1\x1b]0;x\x07"),
                        urq(33, endpointIdentifier=7), urq(34, requestSeqNum=65536), urq(35, requestSeqNum="35"),
                        urq(36, requestSeqNum=-1)):
                gk.send(bad)
            await asyncio.sleep(0.1)
            assert ras.dropped == 6 and ras.registration is not None and not unregistered
            assert await admit(ras) == CALLEE  # still registered, still working
            assert "unregistrationConfirm" not in gk.names()
            gk.send(urq(37, reason=("ttlExpired", 0), gatekeeperIdentifier="gk", _ext_50=b""))
            while not unregistered:
                await asyncio.sleep(0.01)
            assert ras.registration is None and ras._keepalive is None
            assert (await ras.register()).time_to_live == 60 and ras._keepalive is not None  # keep-alives again
            assert [m.body["requestSeqNum"] for m in gk.received if m.name == "unregistrationConfirm"] == [37]

    asyncio.run(scenario())


# --------------------------------------------------------------------------- through GatekeeperLink


def test_gatekeeper_link_refuses_a_bad_rcf_and_a_bad_acf() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        _, gk = await loop.create_datagram_endpoint(Gatekeeper, local_addr=("127.0.0.1", 0))
        with mock.patch.object(ras_module, "parse_ras", gk.parse):
            link = GatekeeperLink(A("127.0.0.1", gk.port), ["kiosk-1"], 1720, timeout=0.3, retries=0)
            gk.answers["registrationRequest"] = rcf_with(timeToLive=-60)
            with pytest.raises(SignallingError, match="timeToLive -60"):
                await link.start()
            assert link.ras is None and not link.registered  # closed, nothing left behind
            del gk.answers["registrationRequest"]
            await link.start()
            gk.answers["admissionRequest"] = lambda seq, _: [("admissionConfirm", admission_confirm(
                seq, A("255.255.255.255", 1720)))]
            with pytest.raises(SignallingError, match="255.255.255.255 .*not a unicast host address"):
                await link.admit(call_id=CALL_ID, conference_id=CONF_ID, call_reference=1, destination=["agent"])
            assert link.registered
            await link.close()
        gk.transport.close()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- random mutations


HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.integers(0, 70000), st.floats(),
    st.text(max_size=140), st.binary(max_size=20), st.tuples(st.text(max_size=20), st.integers()),
    st.dictionaries(st.sampled_from(["ip", "port", "guid", "x"]), st.integers() | st.binary(max_size=17),
                    max_size=3),
    st.lists(st.integers(), max_size=3), st.just(10**5000),
)

REPLIES: dict[str, Callable[[int], tuple[str, Any]]] = {
    "gcf": lambda seq: ("gatekeeperConfirm", gatekeeper_confirm(seq, A("127.0.0.1", 1719), "gk")),
    "rcf": lambda seq: ("registrationConfirm", registration_confirm(seq, A("127.0.0.1", 1720), "ep-1",
                                                                    gatekeeper_id="gk", time_to_live=60)),
    "rrj": lambda seq: ("registrationReject", registration_reject(seq, "duplicateAlias")),
    "acf": lambda seq: ("admissionConfirm", admission_confirm(seq, CALLEE)),
    "arj": lambda seq: ("admissionReject", admission_reject(seq)),
    "rip": lambda seq: ("requestInProgress", {"requestSeqNum": seq, "delay": 50}),
    "drq": lambda seq: ("disengageRequest", disengage_request(seq, "ep-1", call_id=CALL_ID, conference_id=CONF_ID,
                                                              call_reference=5, answered=True)),
    "urq": lambda seq: ("unregistrationRequest", unregistration_request(seq, A("127.0.0.1", 1720), "ep-1")),
}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a decoded value: dict keys, tuple/list items, recursively."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (tuple, list)) else ()
    return [p for key, inner in items for p in [(*path, key), *_paths(inner, (*path, key))]]


def _mutate(value: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    """A copy of ``value`` with the place at ``path`` replaced by ``new`` (or removed, in a dict)."""
    if not path:
        return new
    key, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        if delete and not rest:
            out.pop(key, None)
        else:
            out[key] = _mutate(value[key], rest, new, delete)
        return out
    items = list(value)
    items[key] = _mutate(items[key], rest, new, delete)
    return tuple(items) if isinstance(value, tuple) else items


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(REPLIES)), data=st.data())
def test_random_mutations_of_replies_raise_only_vcore_errors(kind: str, data: st.DataObject) -> None:
    """A mutated reply (wire-encoded when pycrate can, else injected) makes the client's call succeed or raise a
    vcore error; the datagram handler and the loop see no other exception; a valid ACF works afterwards."""
    async def scenario() -> None:
        async with gatekeeper_and_client(timeout=0.05, retries=0) as (gk, ras):
            await ras.register()

            def hostile(seq: int, _: Any) -> list[Reply]:
                name, body = REPLIES[kind](seq)
                for _ in range(data.draw(st.integers(1, 3), label="mutations")):
                    paths = _paths(body)
                    if not paths:
                        break
                    path = data.draw(st.sampled_from(paths), label="path")
                    body = _mutate(body, path, data.draw(HOSTILE, label="value"), data.draw(st.booleans()))
                if kind == "rip":  # then the answer, so that a (valid) long delay costs nothing
                    return [(name, body), REPLIES["acf"](seq)]
                return [(name, body)]

            request = {"gcf": "gatekeeperRequest", "rcf": "registrationRequest", "rrj": "registrationRequest"}.get(
                kind, "admissionRequest")
            gk.answers[request] = hostile
            try:
                if kind in ("drq", "urq"):  # unsolicited: sent, then the client must still work
                    gk.send(hostile(data.draw(st.integers(1, 65535), label="seq"), None)[0])
                    await asyncio.sleep(0.02)
                elif request == "gatekeeperRequest":
                    await ras.discover()
                elif request == "registrationRequest":
                    await ras.register()
                else:
                    await admit(ras)
            except VcoreError:
                pass
            del gk.answers[request]
            if ras.registration is None:
                await ras.register()
            assert await admit(ras, 9) == CALLEE

    asyncio.run(scenario())
