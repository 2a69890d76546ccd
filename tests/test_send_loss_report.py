"""Send-side loss is a measurement, never a default: None until the peer's reception report, shown as "–"."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

from vcore.call.events import StreamStats
from vcore.rtp.rtcp import ReportBlock, RtcpReceiverReport, serialize_rtcp
from vcore.station_log import StatsFile, stats_line, stats_record, summary_line

from .call_helpers import run, wait_for


def test_sender_loss_is_none_until_a_receiver_report() -> None:
    from vcore.media import AudioEncoder, AudioSender, Tone

    async def scenario() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            peer.setblocking(False)
            sender = AudioSender(Tone(sample_rate=8000), AudioEncoder("pcmu"), peer.getsockname(),
                                 rtcp_interval=0.2)
            try:
                await sender.start()
                await wait_for(lambda: sender.packets_sent > 10)
                await asyncio.sleep(0.5)  # several of our SRs went out; the peer reported nothing
                assert sender.fraction_lost is None and sender.rtt is None
                rr = RtcpReceiverReport(0x5EED, [ReportBlock(sender.ssrc, 64, 3, 1000, 0, 0, 0)])
                peer.sendto(serialize_rtcp([rr]), sender.local_address)  # RTCP multiplexed on a bare sender
                await wait_for(lambda: sender.fraction_lost is not None)
                assert sender.fraction_lost == 0.25  # 64/256
                other = RtcpReceiverReport(0x5EED, [ReportBlock(sender.ssrc ^ 1, 0, 0, 1000, 0, 0, 0)])
                peer.sendto(serialize_rtcp([other]), sender.local_address)  # about another stream: ignored
                await asyncio.sleep(0.2)
                assert sender.fraction_lost == 0.25
            finally:
                await sender.close()

    run(scenario())


def _stream(**kw: object) -> StreamStats:
    base: dict[str, object] = {"stream": "video", "direction": "send", "codec": "H264",
                               "cipher_suite": "AEAD_AES_128_GCM", "packets": 10, "bytes": 9000,
                               "bitrate": 512_000.0, "fps": 25.0}
    base.update(kw)
    return StreamStats(**base)  # type: ignore[arg-type]


def test_no_report_is_shown_as_a_dash_not_zero() -> None:
    assert stats_line(_stream()) == "video tx H264 512k 25.0fps loss – rtt – GCM"
    assert stats_line(_stream(loss=0.0, rtt=0.042)) == "video tx H264 512k 25.0fps loss 0.0% rtt 42ms GCM"
    assert stats_line(_stream(direction="receive")) == "video rx H264 512k 25.0fps loss – GCM"
    line = summary_line(_stream())
    assert " loss=– rtt=– [" in line, line
    assert " loss=1.2% rtt=42ms [" in summary_line(_stream(loss=0.0123, rtt=0.042))
    assert "rtt=" not in summary_line(_stream(direction="receive", loss=0.0))


def test_stats_json_keeps_null_for_no_report(tmp_path: Path) -> None:
    from vcore.call.events import CallStats

    path = tmp_path / "stats.jsonl"
    stats = CallStats("agent", 3.0, "tls", True, (_stream(), _stream(direction="receive", loss=0.01)), None, (), 0.0)
    f = StatsFile(path)
    try:
        f.write(stats_record(stats))
    finally:
        f.close()
    record = json.loads(path.read_text().splitlines()[0])
    sent, received = record["streams"]
    assert sent["loss"] is None and sent["rtt"] is None  # JSON null, not 0
    assert received["loss"] == 0.01
