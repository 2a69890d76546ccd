"""The seeded network emulator (in-process and as a UDP relay on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import statistics

import pytest

from vcore.testing import NetworkEmulator, UdpRelay


def stream(n: int, interval: float = 0.001, size: int = 100) -> list[tuple[float, bytes]]:
    return [(k * interval, k.to_bytes(4, "big") + b"x" * (size - 4)) for k in range(n)]


def ids(out: list[tuple[float, bytes]]) -> list[int]:
    return [int.from_bytes(d[:4], "big") for _, d in out]


def test_same_seed_same_result_other_seed_differs() -> None:
    src = stream(2000)
    kw = dict(loss=0.05, jitter=0.02, reorder=0.01, duplicate=0.01)
    a = NetworkEmulator(seed=1, **kw).apply(src)
    b = NetworkEmulator(seed=1, **kw).apply(src)
    c = NetworkEmulator(seed=2, **kw).apply(src)
    assert a == b and a != c


def test_clean_path_is_identity_plus_delay() -> None:
    src = stream(100)
    out = NetworkEmulator(delay=0.02).apply(src)
    assert [d for _, d in out] == [d for _, d in src]
    assert all(t == pytest.approx(s + 0.02) for (t, _), (s, _) in zip(out, src))


def test_random_loss_rate() -> None:
    em = NetworkEmulator(seed=3, loss=0.05)
    out = em.apply(stream(20000))
    assert 0.045 < 1 - len(out) / 20000 < 0.055
    assert em.stats.lost == 20000 - len(out)


def test_gilbert_elliott_bursts() -> None:
    em = NetworkEmulator(seed=4, ge_p=0.0125, ge_r=0.25)
    got = set(ids(em.apply(stream(40000))))
    lost = [k for k in range(40000) if k not in got]
    assert 0.04 < len(lost) / 40000 < 0.06  # p / (p + r) = 4.8 %
    bursts = []
    run = 1
    for a, b in zip(lost, lost[1:]):
        if b == a + 1:
            run += 1
        else:
            bursts.append(run)
            run = 1
    assert 3.0 < statistics.mean(bursts) < 5.0  # 1 / r = 4


def test_jitter_bounds_and_reordering() -> None:
    src = stream(5000)
    out = NetworkEmulator(seed=5, jitter=0.03).apply(src)
    delays = [t - int.from_bytes(d[:4], "big") * 0.001 for t, d in out]
    assert min(delays) >= 0.0 and max(delays) <= 0.06 + 1e-9
    assert ids(out) != sorted(ids(out))  # jitter reorders, as netem does


def test_explicit_reorder_and_duplicates() -> None:
    em = NetworkEmulator(seed=6, reorder=0.02, reorder_delay=0.005, duplicate=0.03)
    out = em.apply(stream(5000))
    got = ids(out)
    assert len(got) - len(set(got)) == em.stats.duplicated > 100
    late = sum(1 for a, b in zip(got, got[1:]) if b < a)
    assert late >= em.stats.reordered * 0.9


def test_rate_limit_and_queue_drops() -> None:
    # 1000 packets of 1000 bytes in 0.1 s through 512 kbit/s: the queue (16 kB) overflows
    em = NetworkEmulator(rate=512_000, queue_bytes=16_000, overhead=28)
    src = stream(1000, interval=0.0001, size=1000)
    out = em.apply(src)
    assert em.stats.queue_drops > 0
    times = [t for t, _ in out]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 1028 * 8 / 512_000 - 1e-9  # serialized at the link rate
    assert len(out) + em.stats.queue_drops == 1000


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        NetworkEmulator(loss=1.5)
    with pytest.raises(ValueError):
        NetworkEmulator(jitter=-1.0)


def test_udp_relay_on_loopback() -> None:
    async def main() -> tuple[list[bytes], list[bytes]]:
        loop = asyncio.get_running_loop()
        got: list[bytes] = []
        back: list[bytes] = []
        done = asyncio.Event()

        class Sink(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.t = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                got.append(data)
                self.t.sendto(b"ack" + data[:4], addr)  # type: ignore[attr-defined]

        class Source(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                back.append(data)
                if len(back) >= 5:
                    done.set()

        sink_t, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        target = sink_t.get_extra_info("sockname")
        em = NetworkEmulator(seed=1, delay=0.01, loss=0.5)
        async with UdpRelay((target[0], target[1]), em) as relay:
            src_t, _ = await loop.create_datagram_endpoint(Source, remote_addr=relay.address)
            for k in range(40):
                src_t.sendto(k.to_bytes(4, "big"))
            await asyncio.wait_for(done.wait(), 5.0)
            await asyncio.sleep(0.05)
            src_t.close()
        sink_t.close()
        return got, back

    got, back = asyncio.run(main())
    assert 5 <= len(got) < 40  # half is lost on the way in
    assert len(back) == len(got)  # replies come back unimpaired


def test_relay_carries_a_call_leg_with_nack() -> None:
    """Sender -> UdpRelay (seeded loss) -> VideoJitterBuffer with NACK -> RTX history answers."""
    from vcore import RtcpNack, VideoJitterBuffer
    from vcore._speedups import fastpath
    from vcore.nack import RetransmissionHistory
    from vcore.rtp.packet import RtpPacket

    sps = b"\x67\x42\xc0\x1f" + b"\x5a" * 8
    pps = b"\x68\xce\x3c\x80"

    def au(key: bool) -> bytes:
        nals = [sps, pps, b"\x65\x88" + b"\x5a" * 6000] if key else [b"\x41\x9a" + b"\x5b" * 2000]
        return b"".join(b"\x00\x00\x00\x01" + n for n in nals)

    async def main() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        jb = VideoJitterBuffer(max_delay=0.5, nack=True, rtt=0.02)
        units: list[object] = []

        class Receiver(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.t = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                now = loop.time()
                pkt = RtpPacket.parse(data)
                if pkt.ssrc == 0x7777:
                    jb.push_rtx(pkt, now)
                else:
                    jb.push(pkt, now)
                units.extend(jb.pop(now))
                seqs = jb.nacks(now)
                if seqs:  # feedback: the NACK's list, as the sender reads it
                    nack = RtcpNack(sender_ssrc=1, media_ssrc=pkt.ssrc, lost=seqs)
                    self.t.sendto(b"N" + b"".join(s.to_bytes(2, "big") for s in nack.lost), addr)  # type: ignore[attr-defined]

        history = RetransmissionHistory(256, rtx_payload_type=97, rtx_ssrc=0x7777)

        class Sender(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.t = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                seqs = [int.from_bytes(data[i : i + 2], "big") for i in range(1, len(data), 2)]
                for p in history.resend(seqs, loop.time()):
                    self.t.sendto(p.serialize())  # type: ignore[attr-defined]

        rx_t, rx = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
        target = rx_t.get_extra_info("sockname")
        async with UdpRelay((target[0], target[1]), NetworkEmulator(seed=3, loss=0.05, delay=0.005)) as relay:
            tx_t, tx = await loop.create_datagram_endpoint(Sender, remote_addr=relay.address)
            seq = 100
            for k in range(30):
                pkts = fastpath.h264_packetize(au(k % 10 == 0), 3000 * k, 96, 0x4242, seq, 1200, 1)
                seq += len(pkts)
                for p in pkts:
                    history.record(p, loop.time())
                    tx_t.sendto(p.serialize())
                await asyncio.sleep(1 / 30)
            for _ in range(60):  # let retransmissions and deadlines play out
                await asyncio.sleep(0.02)
                units.extend(jb.pop(loop.time()))
                seqs = jb.nacks(loop.time())
                if seqs:
                    rx_t.sendto(b"N" + b"".join(s.to_bytes(2, "big") for s in seqs), relay.address)
            tx_t.close()
        rx_t.close()
        return len(units), jb.stats.recovered, relay.emulator.stats.lost

    delivered, recovered, lost = asyncio.run(main())
    assert lost > 0
    assert recovered > 0
    # a lost last packet of the last frame cannot be seen (nothing follows it), and an
    # incomplete frame right before a complete keyframe is skipped when the keyframe is due
    assert delivered >= 27


def test_kernel_arrival_times() -> None:
    """The kernel's real-time stamp moved onto the monotonic clock; a stepped clock is not believed."""
    import socket
    import struct

    from vcore.transport.timestamps import SO_TIMESTAMPNS, kernel_arrival

    def stamp(t: float) -> list[tuple[int, int, bytes]]:
        return [(socket.SOL_SOCKET, SO_TIMESTAMPNS, struct.pack("@ll", int(t), int((t % 1) * 1e9)))]

    mono, wall = 100.0, 1_800_000_000.0
    assert abs(kernel_arrival(stamp(wall - 0.25), mono, wall) - 99.75) < 1e-6  # queued 250 ms in the socket
    assert kernel_arrival(stamp(wall + 1.0), mono, wall) == mono  # in the future: not believed
    assert kernel_arrival(stamp(wall - 60.0), mono, wall) == mono  # the clock stepped
    assert kernel_arrival([], mono, wall) == mono
