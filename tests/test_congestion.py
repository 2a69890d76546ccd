"""Congestion control: RFC 8888 feedback, the controller, the pacer, the ladder and the frame dropper (pure parts).

The controller is driven through vcore's seeded network emulator (a drop-tail
queue in front of a link of a given rate, plus jitter and random loss),
stepped in simulated time: no sockets, no clock.
"""

from __future__ import annotations

import math


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcore import ParseError
from vcore.media.adaptation import FrameDropper, QualityLadder, Rung
from vcore.rtp.rtcp import (
    CCFB_ATO_OVER_RANGE,
    CcfbBlock,
    RtcpCcfb,
    RtcpReceiverReport,
    parse_rtcp,
    serialize_rtcp,
)
from vcore.testing.netem import NetworkEmulator
from vcore.transport import CongestionController, FeedbackRecorder, Pacer, PacketResult, SendLog
from vcore.transport.congestion import BETA
from vcore.transport.pacer import PROBE_FLAG

# ------------------------------------------------------------------ RFC 8888 packets


def test_ccfb_round_trip_in_a_compound() -> None:
    fb = RtcpCcfb(0x11, [CcfbBlock(0x22, 65534, ((0, 10), None, (3, CCFB_ATO_OVER_RANGE))),
                         CcfbBlock(0x33, 7, ())], 0x12345678)
    data = serialize_rtcp([RtcpReceiverReport(0x11, []), fb])
    # RTPFB (205), FMT 11; 2 reports + padding to 32 bits; an empty block; the report timestamp last
    assert data[8:10] == bytes([0x8B, 205])
    assert data.endswith(bytes.fromhex("12345678"))
    assert parse_rtcp(data)[1] == fb


def test_ccfb_wire_format_matches_rfc_8888() -> None:
    # one stream, begin_seq 0x0102, 1 report: R=1, ECN=01, ATO=0x0123
    data = serialize_rtcp([RtcpCcfb(1, [CcfbBlock(2, 0x0102, ((1, 0x0123),))], 0xAABBCCDD)])
    assert data.hex() == "8bcd0005" "00000001" "00000002" "01020001" "a1230000" "aabbccdd"


@pytest.mark.parametrize("body, why", [
    (bytes.fromhex("00000001"), "truncated"),
    (bytes.fromhex("00000001000000020000000400000000"), "truncated"),  # 4 reports announced, none there
    (bytes.fromhex("0000000100000002000040010000000000000000"), "at most 16384"),
    (bytes.fromhex("0000000100000002000000"), "multiple of 4"),
])
def test_ccfb_malformed_is_a_parse_error(body: bytes, why: str) -> None:
    words = (len(body) + 3) // 4
    data = bytes([0x8B, 205]) + words.to_bytes(2, "big") + body + b"\0" * (-len(body) % 4)
    if why == "multiple of 4":  # a length field that disagrees with the data
        data = bytes([0x8B, 205]) + (len(body) // 4).to_bytes(2, "big") + body[: 4 * (len(body) // 4)]
        data += b"\0\0\0"
        with pytest.raises(ParseError):
            parse_rtcp(data)
        return
    with pytest.raises(ParseError, match=why):
        parse_rtcp(data)


def test_ccfb_refuses_to_serialize_bad_values() -> None:
    with pytest.raises(ValueError):
        serialize_rtcp([RtcpCcfb(1, [CcfbBlock(2, 0, ((4, 0),))])])
    with pytest.raises(ValueError):
        serialize_rtcp([RtcpCcfb(1, [CcfbBlock(2, 0, ((0, 0x2000),))])])


_report = st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(0, 0x1FFF)))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF),
                                                     st.lists(_report, max_size=40)), max_size=4),
       st.integers(0, 2**32 - 1))
def test_ccfb_round_trip_property(sender: int, blocks: list, ts: int) -> None:
    fb = RtcpCcfb(sender, [CcfbBlock(s, b, tuple(r)) for s, b, r in blocks], ts)
    assert parse_rtcp(serialize_rtcp([fb])) == [fb]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_ccfb_parser_survives_garbage(body: bytes) -> None:
    body += b"\0" * (-len(body) % 4)
    data = bytes([0x8B, 205]) + (len(body) // 4).to_bytes(2, "big") + body
    try:
        parse_rtcp(data)
    except ParseError:
        pass


# ------------------------------------------------------------------ receiver side


def _ato_ms(report: RtcpCcfb) -> list[float | None]:
    return [None if r is None else r[1] / 1.024 for r in report.blocks[0].reports]


def test_recorder_reports_arrivals_and_losses() -> None:
    rec = FeedbackRecorder()
    assert rec.report(9, 0.0, 0) is None  # nothing yet
    rec.on_packet(5, 100, 10.000)
    rec.on_packet(5, 102, 10.050)
    report = rec.report(9, 10.100, 1234)
    assert report is not None and report.sender_ssrc == 9 and report.report_timestamp == 1234
    block = report.blocks[0]
    assert (block.ssrc, block.begin_seq, len(block.reports)) == (5, 100, 3)
    ms = _ato_ms(report)
    assert ms[1] is None and ms[0] == pytest.approx(100, abs=1) and ms[2] == pytest.approx(50, abs=1)
    assert rec.report(9, 10.2, 0) is not None  # packet 101 is reported missing again...
    rec.on_packet(5, 101, 10.25)  # ...and arrives late
    again = rec.report(9, 10.3, 0)
    assert again is not None and again.blocks[0].begin_seq == 101 and again.blocks[0].reports[0] is not None
    rec.on_packet(5, 103, 10.31)
    assert rec.report(9, 10.4, 0).blocks[0].begin_seq == 103  # type: ignore[union-attr]


def test_recorder_gives_up_rereporting_after_half_a_second() -> None:
    rec = FeedbackRecorder()
    rec.on_packet(5, 10, 0.0)
    rec.on_packet(5, 12, 0.0)
    rec.report(1, 0.1, 0)
    rec.on_packet(5, 13, 0.9)
    report = rec.report(1, 1.0, 0)
    assert report is not None and report.blocks[0].begin_seq == 13


def test_recorder_follows_the_sequence_wrap_and_a_new_ssrc() -> None:
    rec = FeedbackRecorder()
    for i, seq in enumerate((65534, 65535, 0, 1)):
        rec.on_packet(7, seq, i * 0.01)
    report = rec.report(1, 0.1, 0)
    assert report is not None and report.blocks[0].begin_seq == 65534 and len(report.blocks[0].reports) == 4
    assert all(r is not None for r in report.blocks[0].reports)
    rec.on_packet(8, 500, 0.2)  # the sender restarted: a new stream
    report = rec.report(1, 0.3, 0)
    assert report is not None and report.blocks[0].ssrc == 8 and report.blocks[0].begin_seq == 500


def test_recorder_bounds_its_report_after_a_long_gap() -> None:
    rec = FeedbackRecorder()
    rec.on_packet(1, 0, 0.0)
    rec.report(2, 0.0, 0)
    rec.on_packet(1, 30000, 1.0)
    report = rec.report(2, 1.1, 0)
    assert report is not None and len(report.blocks[0].reports) <= 1024


# ------------------------------------------------------------------ sender side


def test_send_log_matches_reports() -> None:
    log = SendLog()
    for seq in range(10, 14):
        log.on_sent(seq, 1.0 + seq / 1000, 1200)
    # receiver clock: report at 100.0 s (16.16), packets arrived 50, 40, -, 20 ms before it
    ts = 100 << 16
    report = RtcpCcfb(9, [CcfbBlock(5, 10, ((0, 51), (0, 41), None, (0, 20)))], ts)
    results = log.results(report, 5, 1.1)
    assert [r.sequence_number for r in results] == [10, 11, 12, 13]
    assert [r.received for r in results] == [True, True, False, True]
    assert results[0].arrival == pytest.approx(0.0 - 51 / 1024)
    assert log.results(RtcpCcfb(9, [CcfbBlock(6, 10, ((0, 1),))], ts), 5, 1.1) == []  # not our stream
    # the lost one arrives after all: reported once, flagged late; the others are not reported twice
    later = log.results(RtcpCcfb(9, [CcfbBlock(5, 10, ((0, 61), (0, 51), (0, 5), (0, 30)))], ts + 655), 5, 1.2)
    assert [(r.sequence_number, r.late) for r in later] == [(12, True)]


def test_send_log_marks_retransmissions_and_forgets_old_packets() -> None:
    log = SendLog(capacity=16, max_age=2.0)
    log.on_sent(3, 0.0, 100)
    log.on_sent(3, 0.1, 100)  # sent again (a NACK answer)
    result = log.results(RtcpCcfb(1, [CcfbBlock(5, 3, ((0, 0),))], 0), 5, 0.2)
    assert result[0].retransmitted
    log.on_sent(4, 0.0, 100)
    assert log.results(RtcpCcfb(1, [CcfbBlock(5, 4, ((0, 0),))], 0), 5, 5.0) == []  # too old to trust


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 0xFFFF), st.lists(st.tuples(st.integers(1, 1400), st.booleans()), min_size=1, max_size=300),
       st.floats(0.0, 3.5))
def test_send_log_bits_in_flight_walks_back_from_the_newest(first: int, sends: list, cut: float) -> None:
    """``bits_sent_after`` (called on every report) equals the sum over the whole log, across the wrap."""
    log = SendLog(capacity=64, max_age=8.0)
    sent = []
    for i, (size, acked) in enumerate(sends):
        seq = (first + i) & 0xFFFF
        log.on_sent(seq, i * 0.01, size)
        sent.append((seq, i * 0.01, size, acked))
    now = len(sends) * 0.01
    acked = [(seq, t) for seq, t, _, a in sent[-64:] if a]
    if acked:  # a report that speaks of the acknowledged ones (received 1 ms after sending)
        base = acked[0][0]
        rows = {(seq - base) & 0xFFFF: (0, 1) for seq, _ in acked}
        log.results(RtcpCcfb(1, [CcfbBlock(5, base, tuple(rows.get(k) for k in range(max(rows) + 1)))], 0), 5, now)
    kept = sent[-64:]
    reported = {seq for seq, _ in acked}
    reported |= {seq for seq, *_ in kept if acked and (seq - acked[0][0]) & 0xFFFF <= (acked[-1][0] - acked[0][0]) & 0xFFFF}
    expect = 8 * sum(size for seq, t, size, _ in kept if t > cut and seq not in reported)
    assert log.bits_sent_after(cut, now) == expect


# ------------------------------------------------------------------ the controller against a model link


def bottleneck(rate: float, *, loss: float = 0.0, jitter: float = 0.0) -> NetworkEmulator:
    """An uplink of ``rate`` bit/s behind a 300 ms drop-tail queue, 20 ms away (vcore's seeded emulator)."""
    return NetworkEmulator(seed=1, rate=rate, queue_bytes=int(rate / 8 * 0.3), delay=0.02, jitter=jitter, loss=loss)


def simulate(cc: CongestionController, link: NetworkEmulator, seconds: float, *, start: float = 0.0,
             steps: list[tuple[float, float]] | None = None, offset: float = 1000.0,
             use: float = 1.0, backlog: bool = False, probe: bool = False) -> list[tuple[float, int, float]]:
    """Run a sender at the controller's target through ``link``; returns (time, target, queue delay) each 100 ms.

    The receiver's clock is ``offset`` seconds ahead of the sender's (the controller must not care).
    ``use``: the share of its target the sender makes (an encoder at a small picture size makes less);
    ``backlog``: give the controller the bits sent and not yet reported (as ``SendLog.bits_sent_after``);
    ``probe``: send the probe clusters the controller asks for (311-byte padding packets on their own
    sequence numbers, media and padding together at the probe rate, reported beside the media as the
    sender does).
    """
    t, seq, trace, queue = start, 0, [], 0.0
    pending: list[PacketResult] = []
    padding: list[float] = []  # send times of the cluster's padding packets still to go
    probe_pending: list[PacketResult] = []
    next_fb = start + 0.1
    steps = list(steps or [])
    while t < start + seconds:
        if steps and t >= steps[0][0]:
            link.rate = steps.pop(0)[1]
        while padding and padding[0] <= t:
            at = padding.pop(0)
            got = link.send(at, bytes(311 - link.overhead))
            probe_pending.append(PacketResult(len(probe_pending), at, 311, bool(got),
                                              got[0][0] + offset if got else None))
        size = 1200
        arrivals = link.send(t, bytes(size))
        arrival = arrivals[0][0] if arrivals else None
        if arrival is not None:
            queue = arrival - t - link.base_delay - (size + link.overhead) * 8 / link.rate
        pending.append(PacketResult(seq, t, size, arrival is not None,
                                    None if arrival is None else arrival + offset))
        seq += 1
        t += size * 8 / (cc.target * use)
        if t >= next_fb:
            done = [p for p in pending if p.arrival is None or p.arrival - offset <= t]
            if done:
                if any(p.received for p in done):
                    reported = [p for p in done if p.received or p.send_time < t - 0.05]
                    ids = {id(p) for p in reported}
                    waiting = [p for p in pending if id(p) not in ids]
                    cc.on_feedback(reported, t, (lambda after: 8 * sum(p.size for p in waiting if p.send_time > after))
                                   if backlog else None)
                pending = [p for p in pending if p not in done]
            if probe:
                back = [p for p in probe_pending if p.arrival is None or p.arrival - offset <= t]
                if back:
                    cc.on_probe_feedback(back, t)
                    probe_pending = [p for p in probe_pending if p not in back]
                    t += cc.take_probe_debt()  # the sender sends nothing new while the probe's queue drains
                rate = cc.probe_rate(t) if not padding else None
                if rate is not None:
                    count = max(6, math.ceil(max(rate - (cc.received_rate or 0), rate / 2) * 0.15 / 8 / 311))
                    cc.probe_sent(rate, count, t)
                    # the pacer sends the media in the cluster at its rate too: the padding fills the rest
                    spacing = 311 * 8 / max(rate - cc.target * use, 0.1 * rate)
                    padding = [t + i * spacing for i in range(count)]
            trace.append((t, cc.target, queue))
            next_fb += 0.1
    return trace


def test_controller_fills_an_adsl_uplink_without_a_standing_queue() -> None:
    cc = CongestionController(start_bitrate=300_000, max_bitrate=2_000_000)
    link = bottleneck(512_000)
    trace = simulate(cc, link, 30.0)
    converged = [target for t, target, _ in trace if t >= 5.0]
    assert min(converged) >= 0.5 * 512_000, "the rate collapsed"
    assert sum(converged) / len(converged) >= 0.8 * 512_000, "less than 80 % of the line used after 5 s"
    assert sum(q for t, _, q in trace if t >= 5.0) / len(converged) < 0.1, "a standing queue of 100 ms or more"
    assert cc.decreases >= 1


def test_controller_follows_capacity_steps() -> None:
    cc = CongestionController(start_bitrate=300_000, max_bitrate=2_000_000)
    link = bottleneck(1_000_000)
    trace = simulate(cc, link, 60.0, steps=[(20.0, 256_000), (40.0, 1_000_000)])
    after_drop = [target for t, target, _ in trace if 23.0 <= t < 40.0]
    assert max(after_drop) <= 1.1 * 256_000, "still above the new capacity 3 s after the drop"
    assert min(after_drop) >= 0.4 * 256_000
    after_rise = [target for t, target, _ in trace if 50.0 <= t < 60.0]
    assert max(after_rise) >= 0.8 * 1_000_000, "not back near the capacity 10 s after it rose"


def test_the_delay_floor_is_relearnt_after_a_capacity_drop() -> None:
    """A packet crosses a 256 kbit/s line in 37 ms and a 1 Mbit/s one in 10 ms (issue 16).

    After a drop the floor learnt at 1 Mbit/s reads as a standing ~30 ms queue; the controller
    held at half the new line until the floor aged out of its minute. A level queue through two
    seconds of holding is the new floor.
    """
    cc = CongestionController(start_bitrate=300_000, max_bitrate=2_000_000)
    trace = simulate(cc, bottleneck(1_000_000), 40.0, steps=[(20.0, 256_000)], use=0.8)
    after = [0.8 * target for t, target, _ in trace if 25.0 <= t < 40.0]
    assert sum(after) / len(after) >= 0.75 * 256_000, "the sender sits far below the new capacity"
    queues = sorted(q for t, _, q in trace if 25.0 <= t < 40.0)
    assert queues[int(0.95 * len(queues))] < 0.080, "the probes at 256 kbit/s build a queue of 80 ms or more (p95)"
    assert cc.rebases >= 1


def test_a_probe_cluster_finds_a_line_that_came_back() -> None:
    """Issue 16, scenario 3's rise: at 256 kbit/s the encoder makes 75 % of its target and the additive
    probe near the old congestion rate took 10-12 s to find the line back at 1 Mbit/s. Padding clusters
    at twice the received rate find it in a few round trips; while the line stays low, they move nothing
    and the queue each leaves is paid back (the sender sends nothing new while it drains)."""
    slow = CongestionController(start_bitrate=300_000, max_bitrate=2_000_000)
    slow_trace = simulate(slow, bottleneck(1_000_000), 60.0, steps=[(20.0, 256_000), (40.0, 1_000_000)], use=0.75)
    cc = CongestionController(start_bitrate=300_000, max_bitrate=2_000_000)
    link = bottleneck(1_000_000)
    low = simulate(cc, link, 40.0, steps=[(20.0, 256_000)], use=0.75, probe=True)
    assert cc.probes >= 3 and cc.probes_through == 0, "a cluster into the low line was taken for a rise"
    queues = sorted(q for t, _, q in low if 25.0 <= t < 40.0)
    # the cost: on this line (which serialises every packet: no burst allowance) a cluster at twice the
    # received rate leaves a queue of up to ~100 ms, every 3 s while the line stays low
    assert queues[int(0.95 * len(queues))] < 0.15, "the clusters leave a queue of 150 ms or more (p95)"
    trace = low + simulate(cc, link, 20.0, start=40.0, steps=[(40.0, 1_000_000)], use=0.75, probe=True)

    def back(tr: list[tuple[float, int, float]]) -> float:
        return next(t for t, target, _ in tr if t >= 40.0 and target >= 0.8 * 1_000_000) - 40.0

    assert back(trace) <= 6.0, "the probes did not find the line back within 6 s (one interval and a few RTTs)"
    assert back(trace) < back(slow_trace) - 4.0
    assert cc.probes_through >= 2
    # the chained cluster the line spread out measured it: the increase stops under it (no overshoot)
    assert max(target for t, target, _ in trace if 40.0 <= t < 50.0) <= 1_000_000


def test_no_probe_cluster_on_a_steady_line() -> None:
    """Clusters only after a large drop: a line the controller already fills is never probed."""
    cc = CongestionController(start_bitrate=300_000, max_bitrate=2_000_000)
    simulate(cc, bottleneck(512_000), 60.0, probe=True)
    assert cc.probes == 0
    with pytest.raises(ValueError):
        cc.probe_sent(0, 5, 1.0)
    with pytest.raises(ValueError):
        cc.probe_sent(300_000, 0, 1.0)


def test_a_probe_cluster_the_line_spreads_out_moves_nothing_and_leaves_a_debt() -> None:
    cc = CongestionController(start_bitrate=200_000, max_bitrate=2_000_000)
    assert cc.take_probe_debt() == 0.0
    cc.probe_sent(400_000, 10, 0.0)
    gap = 311 * 8 / 256_000  # the line takes 9.7 ms a packet; they left every 6 ms
    results = [PacketResult(i, 0.001 + i * 0.006, 311, True, 5.0 + i * gap) for i in range(10)]
    cc.on_probe_feedback(results[:6], 0.1)
    assert cc.probe_result is None  # not all reported yet
    cc.on_probe_feedback(results[6:], 0.2)
    assert cc.probe_result == pytest.approx(256_000, rel=0.01)
    assert cc.target == 200_000 and cc.probes_through == 0
    assert cc.take_probe_debt() == pytest.approx(9 * (gap - 0.006), abs=1e-6)
    assert cc.take_probe_debt() == 0.0  # taken once


def test_a_probe_cluster_with_too_few_results_moves_nothing() -> None:
    cc = CongestionController(start_bitrate=200_000, max_bitrate=2_000_000)
    cc.probe_sent(400_000, 8, 0.0)
    results = [PacketResult(i, 0.001 + i * 0.006, 311, i < 3, 5.0 + i * 0.006 if i < 3 else None) for i in range(8)]
    cc.on_probe_feedback(results, 0.2)  # all reported, three received: no verdict
    assert cc.target == 200_000 and cc.probes_through == 0 and cc.probe_result is None
    cc.on_probe_feedback(results, 0.3)  # a report after the verdict: ignored
    assert cc.target == 200_000


def test_probing_keeps_the_modem_queue_short() -> None:
    """Near the last congestion rate the probe is slow and a growing queue is caught by its slope (issue 16)."""
    cc = CongestionController(start_bitrate=300_000, max_bitrate=2_000_000)
    trace = simulate(cc, bottleneck(512_000), 60.0)
    queues = sorted(q for t, _, q in trace if t >= 5.0)
    assert queues[int(0.95 * len(queues))] < 0.060, "the probes build a queue of 60 ms or more (p95)"
    assert sum(target for t, target, _ in trace if t >= 5.0) / len(queues) >= 0.85 * 512_000


def test_a_capacity_drop_is_measured_over_the_last_fraction_of_a_second() -> None:
    """Under a deep queue the decrease uses what the line delivered lately, not the 1 s average before the drop."""
    cc = CongestionController(start_bitrate=300_000, max_bitrate=2_000_000)
    trace = simulate(cc, bottleneck(1_000_000), 30.0, steps=[(20.0, 256_000)])
    late = [t - 20.0 for t, target, _ in trace if 20.0 <= t and target > 1.1 * 256_000]
    assert late and max(late) <= 1.0, "still above 1.1 x the new capacity 1 s after the drop"


def test_the_queue_as_it_stands_now_answers_a_capacity_drop_sooner() -> None:
    """With the backlog the controller sees a drop's queue before its filtered measure does (issue 16)."""
    firsts = []
    for backlog in (False, True):
        cc = CongestionController(start_bitrate=300_000, max_bitrate=2_000_000)
        trace = simulate(cc, bottleneck(1_000_000), 24.0, steps=[(20.0, 256_000)], backlog=backlog)
        firsts.append(next(t for t, target, _ in trace if t >= 20.0 and target < 0.8 * 900_000) - 20.0)
    assert firsts[1] <= firsts[0] - 0.1, f"answered after {firsts[1]:.2f} s with the backlog, {firsts[0]:.2f} s without"
    queues = [q for t, _, q in simulate(CongestionController(start_bitrate=300_000, max_bitrate=2_000_000),
                                        bottleneck(512_000), 30.0, backlog=True) if t >= 5.0]
    assert sorted(queues)[int(0.95 * len(queues))] < 0.060, "a steady line is cut for no drop"


def test_random_loss_alone_does_not_throttle_but_a_full_queue_does() -> None:
    lossy = CongestionController(start_bitrate=300_000, max_bitrate=800_000)
    simulate(lossy, bottleneck(5_000_000, loss=0.03, jitter=0.03), 20.0)
    assert lossy.target == 800_000  # 3 % random loss on an empty line: the ceiling is reached
    assert lossy.decreases == 0


def test_heavy_loss_is_congestion() -> None:
    cc = CongestionController(start_bitrate=600_000, max_bitrate=800_000)
    simulate(cc, bottleneck(5_000_000, loss=0.25), 5.0)
    assert cc.target < 600_000 and cc.decreases >= 1


def test_receiver_report_fallback_follows_gcc_loss_rules() -> None:
    cc = CongestionController(start_bitrate=500_000, max_bitrate=1_000_000)
    assert cc.on_receiver_report(0.0, 0.08, 10.0) == 500_000  # first report: no time elapsed yet
    assert cc.rtt == pytest.approx(0.08)
    grown = cc.on_receiver_report(0.0, None, 11.0)
    assert grown == pytest.approx(500_000 * 1.08, rel=0.01)
    held = cc.on_receiver_report(0.05, None, 12.0)
    assert held == grown and cc.state == "hold"
    cut = cc.on_receiver_report(0.2, None, 13.0)
    assert cut == pytest.approx(grown * 0.9, rel=0.01) and cc.state == "decrease"
    # with per-packet feedback flowing, receiver reports only carry the RTT
    cc.on_feedback([PacketResult(1, 13.0, 1200, True, 13.05)], 13.1)
    assert cc.on_receiver_report(0.5, 0.2, 13.2) == cc.target and cc.rtt == pytest.approx(0.2)


def test_limits_and_bad_arguments() -> None:
    cc = CongestionController(start_bitrate=900_000, min_bitrate=100_000, max_bitrate=1_000_000)
    cc.set_limit(300_000)
    assert cc.target == 300_000
    cc.set_limit(10)  # below the floor: the floor wins
    assert cc.target == 100_000
    cc.set_limit(None)
    assert cc.target == 100_000  # lifting a limit does not jump; the controller grows from there
    with pytest.raises(ValueError):
        cc.set_limit(0)
    with pytest.raises(ValueError):
        CongestionController(min_bitrate=0)
    with pytest.raises(ValueError):
        CongestionController(min_bitrate=2_000_000, max_bitrate=1_000_000)
    with pytest.raises(ValueError):
        CongestionController(queue_low=0.1, queue_high=0.05)


# ------------------------------------------------------------------ pacer


def _drain(pacer: Pacer, start: float, until: float, step: float = 0.001) -> list[tuple[float, bytes]]:
    out, t = [], start
    while t < until:
        out += [(t, d) for d, _ in pacer.pop(t)]
        t += step
    return out


def test_pacer_spreads_a_keyframe_at_the_pace_rate() -> None:
    pacer = Pacer(400_000)  # pace: 1 Mbit/s
    pacer.push([(b"x" * 1172, i) for i in range(50)], 0.0)  # a 60 KB keyframe
    sent = _drain(pacer, 0.0, 2.0)
    assert len(sent) == 50
    last = sent[-1][0]
    assert 0.4 < last < 0.6  # 60 KB at 1 Mbit/s: ~0.48 s, not at once and not slower
    early = [t for t, _ in sent if t < 0.1]
    assert len(early) < 15  # a burst of at most 10 ms of the pace rate up front, then the pace
    gaps = [b - a for (a, _), (b, _) in zip(sent, sent[1:])]
    assert max(gaps) < 0.02  # evenly spread: never a stall waiting for the next frame


def test_pacer_drains_a_long_queue_faster() -> None:
    pacer = Pacer(100_000, max_queue_time=1.0)  # pace 250 kbit/s; 240 KB would take 8 s
    pacer.push([(b"x" * 1172, i) for i in range(200)], 0.0)
    assert pacer.rate > 1_000_000
    assert len(_drain(pacer, 0.0, 1.5, 0.002)) == 200


def test_pacer_caps_retransmissions_and_sends_them_first() -> None:
    pacer = Pacer(400_000, rtx_share=0.25)  # 100 kbit/s of retransmissions: ~10 packets per second
    pacer.push([(b"n" * 1172, 1)], 0.0)
    accepted = sum(pacer.push_retransmission((b"r" * 1172, 2), 0.0) for _ in range(30))
    assert 8 <= accepted <= 11 and pacer.rtx_refused == 30 - accepted
    assert pacer.pop(0.01)[0][0][:1] == b"r"
    assert pacer.push_retransmission((b"r" * 1172, 2), 1.5)  # a second later the budget is back


def test_pacer_paces_a_probe_cluster_strictly_media_first() -> None:
    pacer = Pacer(200_000)  # pace 500 kbit/s, but a cluster goes at exactly its own rate
    pacer.push([(b"m" * 1172, 7)], 0.0)
    pacer.push_probe([(b"p" * 283, 40 + i) for i in range(10)], 400_000, 0.0)
    assert pacer.probing and len(pacer) == 11
    sent: list[tuple[float, bytes, int]] = []
    t = 0.0
    while t < 1.0:
        sent += [(t, d, seq) for d, seq in pacer.pop(t)]
        t += 0.0005
    assert [seq for _, _, seq in sent] == [7, *((40 + i) | PROBE_FLAG for i in range(10))]
    assert not pacer.probing and pacer.probe_packets == 10
    times = [at for at, _, _ in sent]
    # each packet leaves when the one before it has taken its time at 400 kbit/s: never a burst
    for (a, d, _), b in zip(sent, times[1:]):
        assert b - a == pytest.approx((len(d) + 28) * 8 / 400_000, abs=0.001)
    with pytest.raises(ValueError):
        pacer.push_probe([], 0, 0.0)


def test_pacer_next_time_and_bad_arguments() -> None:
    pacer = Pacer(400_000)
    assert pacer.next_time(0.0) is None
    pacer.push([(b"x" * 1172, i) for i in range(20)], 0.0)
    pacer.pop(0.0)
    t = pacer.next_time(0.0)
    assert t is not None and t > 0.0
    assert pacer.next_time(t + 0.5) == t + 0.5  # asked later, the packet is due then (a thread that woke late)
    assert pacer.pop(t + 1e-6)  # and at the time it gave, something leaves
    with pytest.raises(ValueError):
        Pacer(0)
    with pytest.raises(ValueError):
        Pacer(100_000, factor=0.5)


# ------------------------------------------------------------------ ladder and frame dropper


def test_ladder_starts_low_steps_down_at_once_and_up_slowly() -> None:
    ladder = QualityLadder(1280, 720, 30)
    assert ladder.start_at(300_000) == Rung(360, 15, 250_000)
    assert ladder.size() == (640, 360)
    assert ladder.update(220_000, 10.0) is None  # over 0.85 x 250k = 212k: still fine
    assert ladder.update(150_000, 10.0) == Rung(180, 15, 0)  # straight down past 270p
    assert ladder.size() == (320, 180)
    assert ladder.update(2_000_000, 11.0) is None  # within the dwell time
    assert ladder.update(2_000_000, 15.0) is None  # first seen above: wait
    rung = ladder.update(2_000_000, 19.5)
    assert rung == Rung(270, 15, 180_000) and ladder.size() == (480, 270)
    assert ladder.changes == 2


def test_ladder_climbs_fast_and_skips_rungs_once_the_line_grew() -> None:
    """Issue 16: after a capacity rise the encoder at 180p made 75 % of its rate while the ladder waited 4 s per rung."""
    slow, fast = QualityLadder(1280, 720, 30), QualityLadder(1280, 720, 30)
    for ladder in (slow, fast):
        assert ladder.start_at(150_000) == Rung(180, 15, 0)
    moves = {}
    for name, ladder in (("slow", slow), ("fast", fast)):
        t, rate = 10.0, 150_000.0
        while t < 30.0 and ladder.rung.height < 360:
            rate *= 1.25 ** 0.1  # the controller's climb once the line grew, reported every 100 ms
            if ladder.update(rate, t, growing=name == "fast") is not None:
                moves.setdefault(name, []).append((round(t, 1), ladder.rung.height))
            t += 0.1
    assert fast.rung.height >= 360 and moves["fast"][-1][0] <= 16.5, moves
    assert len(moves["fast"]) < len(moves["slow"]) or moves["fast"][-1][0] < moves["slow"][-1][0] - 3.0, moves
    # without the flag nothing changes: one rung at a time, 4 s apart
    heights = [h for _, h in moves["slow"]]
    assert heights == sorted(heights) and all(b[0] - a[0] >= 4.0 for a, b in zip(moves["slow"], moves["slow"][1:]))


def test_ladder_sizes_keep_the_aspect_ratio_and_never_exceed_the_source() -> None:
    ladder = QualityLadder(640, 480, 25)
    assert ladder.rungs[0].height == 480 and all(r.fps <= 25 for r in ladder.rungs)
    ladder.start_at(0)
    w, h = ladder.size()
    assert (w, h) == (240, 180) and w % 2 == 0
    with pytest.raises(ValueError):
        QualityLadder(0, 480, 25)


def test_frame_dropper_skips_frames_while_the_encoder_overshoots() -> None:
    dropper = FrameDropper(300_000, window=0.3)
    t, produced = 0.0, 0
    for _ in range(300):  # 10 s of an encoder making 600 kbit/s at 30 fps
        if not dropper.drop(t):
            dropper.on_frame(2500, t)
            produced += 2500 * 8
        t += 1 / 30
    assert produced / 10 == pytest.approx(300_000, rel=0.15)
    assert dropper.dropped > 100
    with pytest.raises(ValueError):
        FrameDropper(0)


def test_send_log_survives_a_reordered_report_at_the_timestamp_wrap() -> None:
    log = SendLog()
    seconds = []
    for i, ts in enumerate((0xFFFFFF00, 0x100, 0xFFFFFF80, 0x200)):
        log.on_sent(i, 0.0, 100)
        r = log.results(RtcpCcfb(1, [CcfbBlock(5, i, ((0, 0),))], ts), 5, 0.1)
        seconds.append(r[0].arrival)
    assert seconds[0] == 0.0
    assert all(s is not None and abs(s) < 0.02 for s in seconds), seconds  # no phantom 65536 s


def test_controller_rate_is_measured_on_our_clock() -> None:
    # one arrival far in the future (a forged report timestamp) must not freeze the received rate
    cc = CongestionController(start_bitrate=300_000, max_bitrate=1_000_000)
    cc.on_feedback([PacketResult(0, 0.0, 1200, True, 10_000.0)], 0.0)
    for k in range(1, 40):
        t = k * 0.1
        cc.on_feedback([PacketResult(k, t, 1200, True, t + 0.02)], t + 0.05)
    assert cc.received_rate is not None and cc.received_rate < 200_000
    assert len(cc._acked) <= 12


def test_ccfb_with_thousands_of_empty_blocks_parses_linearly() -> None:
    body = bytes(4) + bytes.fromhex("0000000200010000") * 8000 + bytes(4)
    data = bytes([0x8B, 205]) + (len(body) // 4).to_bytes(2, "big") + body
    assert len(parse_rtcp(data)[0].blocks) == 8000  # type: ignore[union-attr]


def test_pacer_refuses_frames_once_its_transport_is_gone() -> None:
    import time as _time

    from vcore.transport import PacedSender

    paced = PacedSender(Pacer(400_000), lambda datagrams: False)
    paced.start()
    paced.push([(b"x" * 100, 1)])
    paced.thread.join(2)
    assert not paced.thread.is_alive()
    assert paced.push([(b"x" * 100, 2)]) is False
    _time.sleep(0)


def test_rate_adjuster_memory_is_bounded_without_feedback() -> None:
    from vcore.media.adaptation import RateAdjuster

    adj = RateAdjuster()
    for k in range(10_000):
        adj.on_frame(1000, k / 30)
    assert len(adj._frames) <= 600


def test_losses_sent_before_a_decrease_do_not_cut_the_rate_again() -> None:
    """Issue 16: the burst a capacity drop loses from the modem queue was answered by the delay decrease.

    Counted again once the sender has slowed down (few packets sent since), it would read as 90 % loss and
    cut the rate a second time, to the floor: the 2 s freeze after scenario 3's drop.
    """
    cc = CongestionController(start_bitrate=800_000, min_bitrate=50_000, max_bitrate=2_000_000)
    t, seq = 0.0, 0
    for _ in range(20):  # 2 s of an empty 1 Mbit/s line: a base delay, a received rate
        batch = [PacketResult(seq + i, t + i * 0.01, 1200, True, t + i * 0.01 + 0.02) for i in range(10)]
        seq += 10
        t += 0.1
        cc.on_feedback(batch, t)
    # the capacity drops: the queue is 200 ms deep, then 30 packets in flight are lost at the tail
    while cc.decreases == 0 and t < 5.0:  # the queue measure is the lowest delay of half a second
        deep = [PacketResult(seq + i, t + i * 0.02, 1200, True, t + i * 0.02 + 0.22) for i in range(5)]
        seq += 5
        t += 0.1
        cc.on_feedback(deep, t)
    assert cc.state == "decrease" and cc.decreases == 1
    decreased_at, target = t, cc.target
    lost = [PacketResult(seq + i, decreased_at - 0.2 + i * 0.005, 1200, False, None) for i in range(30)]
    seq += 30
    fresh = [PacketResult(seq + i, decreased_at + 0.1 + i * 0.1, 1200, True, decreased_at + 0.12 + i * 0.1)
             for i in range(3)]
    cc.on_feedback(lost + fresh, decreased_at + 0.6)
    cc.on_feedback([], decreased_at + 1.2)
    assert cc.decreases == 1 and cc.target >= target, "the burst lost before the decrease was counted again"
    assert cc.loss < 0.10
    # losses of packets sent after the decrease still count
    later = [PacketResult(seq + i, decreased_at + 1.0 + i * 0.01, 1200, i % 2 == 0,
                          decreased_at + 1.02 + i * 0.01 if i % 2 == 0 else None) for i in range(40)]
    cc.on_feedback(later, decreased_at + 1.8)
    cc.on_feedback([], decreased_at + 2.4)
    assert cc.loss > 0.10 and cc.decreases == 2


def test_frame_dropper_forgets_bits_encoded_for_a_higher_rate() -> None:
    """A capacity drop must not skip every frame for seconds (the bucket filled at 1 Mbit/s)."""
    dropper = FrameDropper(1_000_000, window=0.2)
    for i in range(6):  # a keyframe and a few big frames at 1 Mbit/s
        dropper.on_frame(12_000, i / 30)
    dropper.set_target(150_000)
    assert not dropper.drop(6 / 30 + 0.07), "still skipping for the old rate"
    assert dropper.dropped == 0
    dropper.set_target(1_000_000)  # an increase keeps the level
    with pytest.raises(ValueError):
        dropper.set_target(0)


def test_the_queue_as_it_stands_now_ends_the_start_phase() -> None:
    """Issue 16: the filtered queue measure lags by a queue; the backlog (bits sent since the newest reported
    packet) shows the queue now: past 60 ms it ends the start phase (which overshoots at 30 %/s)."""

    def feed(cc: CongestionController, backlog_bits: int, seconds: float, t: float, seq: int) -> tuple[float, int]:
        for _ in range(int(seconds * 10)):
            batch = [PacketResult(seq + i, t + i * 0.01, 1200, True, t + i * 0.01 + 0.02) for i in range(10)]
            seq += 10
            t += 0.1
            cc.on_feedback(batch, t, lambda sent: backlog_bits)
        return t, seq

    quiet = CongestionController(start_bitrate=300_000, max_bitrate=2_000_000)
    t, seq = feed(quiet, 0, 1.5, 0.0, 0)
    assert quiet.state == "start" and quiet.queue_now is not None and quiet.queue_now < 0.01
    # the same line, but 150 kbit sent since the newest reported packet (~0.15 s of the line): a queue now
    cc = CongestionController(start_bitrate=300_000, max_bitrate=2_000_000)
    t, seq = feed(cc, 0, 1.5, 0.0, 0)
    t, seq = feed(cc, 150_000, 0.2, t, seq)
    assert cc.state != "start" and cc.decreases == 1 and (cc.queue_delay or 0.0) < 1e-9
    assert cc.target <= int(BETA * (cc.received_rate or 0)) + 1
    # past the start the filtered measure decides: a backlog alone is no congestion
    before, decreases = cc.target, cc.decreases
    t, seq = feed(cc, 150_000, 1.0, t, seq)
    assert cc.target >= before and cc.decreases == decreases
