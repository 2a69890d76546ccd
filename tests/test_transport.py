"""vcore.transport: what is announced, port ranges, RTCP routing and symmetric-RTP latching."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest

from vcore import RtpPacket, SrtpSession, TransportError
from vcore.rtp import RtcpReceiverReport, serialize_rtcp
from vcore.transport import PortRange, RtpTransport, announced_host, parse_port_range, wildcard_for

KEY = os.urandom(28)


# ------------------------------------------------------------------ addresses (pure)


def test_announced_address_rules() -> None:
    # the signalling connection's local address, for a wildcard bind
    assert announced_host(bind_host="0.0.0.0", signalling_local="198.51.100.2", peer_host="198.51.100.3") \
        == "198.51.100.2"
    # a specific bind address wins over the connection's; a public address (static NAT) over both
    assert announced_host(bind_host="192.0.2.10", signalling_local="192.0.2.10", peer_host="203.0.113.2") \
        == "192.0.2.10"
    assert announced_host(bind_host="0.0.0.0", signalling_local="192.0.2.10", peer_host="203.0.113.2",
                          public_address="203.0.113.1") == "203.0.113.1"
    # loopback only to a loopback peer; a dual-stack socket's IPv4-mapped address is announced as IPv4
    assert announced_host(bind_host="0.0.0.0", signalling_local="127.0.0.1", peer_host="127.0.0.1") == "127.0.0.1"
    assert announced_host(bind_host="::", signalling_local="::ffff:198.51.100.2", peer_host="198.51.100.3") \
        == "198.51.100.2"
    assert announced_host(bind_host="::", signalling_local="2001:db8::2", peer_host="2001:db8::3") == "2001:db8::2"
    with pytest.raises(TransportError, match="cannot be reached from 198.51.100.3"):
        announced_host(bind_host="127.0.0.1", signalling_local="127.0.0.1", peer_host="198.51.100.3")
    with pytest.raises(TransportError, match="cannot be reached"):
        announced_host(bind_host="0.0.0.0", signalling_local="0.0.0.0", peer_host="198.51.100.3")
    with pytest.raises(TransportError, match="not an IP address"):
        announced_host(bind_host="0.0.0.0", signalling_local="x", peer_host="198.51.100.3", public_address="kiosk.lan")
    assert wildcard_for("2001:db8::3") == "::" and wildcard_for("203.0.113.2") == "0.0.0.0"


@pytest.mark.parametrize(("text", "pairs"), [("16384-16483", 50), ("16385-16390", 2), ((20000, 20001), 1)])
def test_port_ranges(text: Any, pairs: int) -> None:
    r = parse_port_range(text)
    assert len(r.pairs) == pairs and all(p % 2 == 0 and p + 1 <= r.high for p in r.pairs)


@pytest.mark.parametrize(("text", "message"), [
    ("16384", "expected LOW-HIGH"), ("a-b", "expected LOW-HIGH"), ("100-200", "within 1024..65535"),
    ("16384-70000", "within 1024..65535"), ("16385-16386", "no even/odd port pair"), ("16400-16300", "no even/odd"),
    ((1, 2, 3), "expected \\(low, high\\)"),
])
def test_bad_port_ranges(text: Any, message: str) -> None:
    with pytest.raises(TransportError, match=message):
        parse_port_range(text)


# ------------------------------------------------------------------ sockets


def _free_range(n_pairs: int) -> PortRange:
    """An even-aligned range of free ports (best effort: probed now)."""
    for base in range(40000, 60000, 64):
        socks = []
        try:
            for p in range(base, base + 2 * n_pairs):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return PortRange(base, base + 2 * n_pairs - 1)
    raise AssertionError("no free range")


def test_rtp_even_rtcp_odd_and_range_exhausted() -> None:
    async def scenario() -> None:
        ports = _free_range(2)
        a = RtpTransport("127.0.0.1", ports=ports)
        b = RtpTransport("127.0.0.1", ports=ports)
        c = RtpTransport("127.0.0.1", ports=ports)
        await a.open()
        await b.open()
        try:
            for t in (a, b):
                assert t.local_rtp[1] % 2 == 0 and t.local_rtcp[1] == t.local_rtp[1] + 1
                assert ports.low <= t.local_rtp[1] < t.local_rtcp[1] <= ports.high
            assert a.local_rtp != b.local_rtp
            with pytest.raises(TransportError, match=f"no free RTP/RTCP port pair left in {ports}"):
                await c.open()
        finally:
            for t in (a, b, c):
                await t.close()
        await a.close()  # idempotent

    asyncio.run(scenario())


class _Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, Any]] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append((data, addr))

    @property
    def addr(self) -> tuple[str, int]:
        return self.transport.get_extra_info("sockname")[:2]  # type: ignore[no-any-return]


async def _peer() -> _Peer:
    _, p = await asyncio.get_running_loop().create_datagram_endpoint(_Peer, local_addr=("127.0.0.1", 0))
    return p


def test_latching_follows_authenticated_packets_only() -> None:
    """Media goes back where authenticated packets come from; a forged source never moves it."""
    async def scenario() -> None:
        rx_key = SrtpSession("AEAD_AES_128_GCM", KEY)  # what the peer protects with
        ours = SrtpSession("AEAD_AES_128_GCM", KEY)
        transport = RtpTransport("127.0.0.1", remote_rtp=("192.0.2.2", 5004), remote_rtcp=("192.0.2.2", 5005),
                                 encrypted=True, unprotect_rtcp=ours.unprotect_rtcp, name="video")
        await transport.open()
        real, forger = await _peer(), await _peer()

        def on_rtp(data: bytes, addr: Any) -> None:  # what a receiver does: unprotect, then latch
            try:
                ours.unprotect(data)
            except Exception:
                return
            transport.latch_rtp(addr)

        transport.set_rtp_handler(on_rtp)
        heard: list[Any] = []
        transport.add_rtcp_listener(lambda packets, addr: heard.append((packets, addr)))
        try:
            assert transport.remote_rtp == ("192.0.2.2", 5004) and not transport.latched
            forged = SrtpSession("AEAD_AES_128_GCM", os.urandom(28)).protect(
                RtpPacket(96, 1, 0, 0x1234, b"x" * 50).serialize())
            forger.transport.sendto(forged, transport.local_rtp)
            forger.transport.sendto(b"\x80\xc9\x00\x01" + b"\x00" * 4, transport.local_rtcp)  # plaintext RR
            good = rx_key.protect(RtpPacket(96, 2, 0, 0x1234, b"y" * 50).serialize())
            await asyncio.sleep(0.05)
            assert transport.remote_rtp == ("192.0.2.2", 5004) and transport.rtcp_dropped == 1 and not heard
            real.transport.sendto(good, transport.local_rtp)
            real.transport.sendto(rx_key.protect_rtcp(serialize_rtcp([RtcpReceiverReport(9, [])])),
                                  transport.local_rtcp)
            await asyncio.sleep(0.05)
            assert transport.remote_rtp == real.addr and transport.latched
            assert transport.remote_rtcp == real.addr and len(heard) == 1
            assert isinstance(heard[0][0][0], RtcpReceiverReport)
            # RTP goes back from the socket it arrives on (symmetric RTP), to the latched address
            assert transport.send_rtp_threadsafe([b"\x80\x60" + b"z" * 20])
            transport.send_rtcp([RtcpReceiverReport(7, [])])
            await asyncio.sleep(0.05)
            sources = {addr for _, addr in real.got}
            assert sources == {transport.local_rtp, transport.local_rtcp}
        finally:
            await transport.close()
            real.transport.close()
            forger.transport.close()

    asyncio.run(scenario())


def test_plaintext_latches_only_from_the_signalled_host() -> None:
    async def scenario() -> None:
        transport = RtpTransport("127.0.0.1", remote_rtp=("192.0.2.2", 5004), peer_hosts={"192.0.2.2"})
        await transport.open()
        try:
            transport.latch_rtp(("127.0.0.1", 4000))  # not the peer's host: ignored
            assert transport.remote_rtp == ("192.0.2.2", 5004)
            transport.latch_rtp(("192.0.2.2", 6000))  # the peer's host, another port (a NAT's): followed
            assert transport.remote_rtp == ("192.0.2.2", 6000)
            transport.add_peer_host("127.0.0.1")
            transport.latch_rtp(("127.0.0.1", 4000))
            assert transport.remote_rtp == ("127.0.0.1", 4000)
        finally:
            await transport.close()

    asyncio.run(scenario())


def test_without_a_range_rtcp_is_still_rtp_plus_one() -> None:
    async def scenario() -> None:
        for _ in range(5):
            async with RtpTransport("127.0.0.1") as t:
                assert t.local_rtp[1] % 2 == 0 and t.local_rtcp[1] == t.local_rtp[1] + 1

    asyncio.run(scenario())


def test_held_datagrams_are_delivered_in_order_on_release() -> None:
    """What the peer sends before the key is known waits (bounded) instead of being dropped."""
    async def scenario() -> None:
        transport = RtpTransport("127.0.0.1")
        transport.hold(limit=3)
        await transport.open()
        peer = await _peer()
        got: list[bytes] = []
        transport.set_rtp_handler(lambda data, addr: got.append(data))
        try:
            for i in range(5):
                peer.transport.sendto(RtpPacket(96, i, 0, 1, b"p").serialize(), transport.local_rtp)
            await asyncio.sleep(0.05)
            assert got == [] and transport.holding
            transport.release()
            assert [RtpPacket.parse(d).sequence_number for d in got] == [2, 3, 4]  # the newest `limit`
            transport.release()  # idempotent
            peer.transport.sendto(RtpPacket(96, 5, 0, 1, b"p").serialize(), transport.local_rtp)
            await asyncio.sleep(0.05)
            assert len(got) == 4 and not transport.holding
        finally:
            await transport.close()
            peer.transport.close()

    asyncio.run(scenario())
