"""The call's media plumbing: NACK answered from the sender's history over a lossy link, RR/SDES and RTT."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from vcore import SrtpSession, VideoJitterBuffer
from vcore.nack import RetransmissionHistory
from vcore.testing import NetworkEmulator, UdpRelay

from .call_helpers import run


def test_nack_recovers_losses_through_srtp() -> None:
    from vcore.media import H264Encoder, TestPattern, VideoReceiver, VideoSender

    async def scenario() -> None:
        key = os.urandom(28)
        suite = "AEAD_AES_128_GCM"
        tx_rtp, tx_rtcp, rx = (SrtpSession(suite, key) for _ in range(3))
        jb = VideoJitterBuffer(nack=True, max_delay=0.5, rtt=0.02)
        receiver = VideoReceiver(assembler=jb, unprotect=rx.unprotect, unprotect_rtcp=rx.unprotect_rtcp,
                                 protect_rtcp=rx.protect_rtcp)
        receiver.rtcp_interval, receiver.cname = 0.2, "agent"
        await receiver.start()
        relay = UdpRelay(receiver.local_address, NetworkEmulator(seed=7, loss=0.05, delay=0.01))
        await relay.start()
        sender = VideoSender(TestPattern(320, 240, 15), H264Encoder(320, 240, 15, 300_000, codec="libx264"),
                             relay.address, protect=tx_rtp.protect, protect_rtcp=tx_rtcp.protect_rtcp,
                             unprotect_rtcp=tx_rtcp.unprotect_rtcp, mtu=1184, rtcp_interval=0.2)
        sender.history = RetransmissionHistory(1024)
        sender.cname = "kiosk"
        try:
            await sender.start()
            await asyncio.sleep(4.0)
        finally:
            await sender.close()
            await asyncio.sleep(0.2)
            await receiver.close()
            relay.close()
        stats = jb.stats
        assert receiver.nacks_sent > 0 and sender.retransmitted > 0 and stats.recovered > 0, (
            receiver.nacks_sent, sender.retransmitted, stats)
        assert receiver.dropped == 0  # retransmissions pass SRTP's replay check
        assert receiver.frames >= 0.8 * sender.frames_encoded
        assert sender.rtt is not None and 0.0 <= sender.rtt < 1.0  # from the receiver's RRs (relay adds 10 ms)
        assert receiver.rtcp_packets > 0

    run(scenario())


def test_audio_jitter_buffer_conceals_losses() -> None:
    """Audio through a lossy, jittery relay: played at its playout time, losses concealed, nothing piles up."""
    from vcore import AudioJitterBuffer
    from vcore.media import AudioDecoder, AudioEncoder, AudioReceiver, AudioSender, Tone

    async def scenario() -> None:
        jb = AudioJitterBuffer(8000, 0.02, min_delay=0.02, max_delay=0.3)
        frames: list[Any] = []
        receiver = AudioReceiver(AudioDecoder("g722"), frames.append, jitter=jb)
        await receiver.start()
        relay = UdpRelay(receiver.local_address, NetworkEmulator(seed=3, loss=0.1, delay=0.02, jitter=0.01))
        await relay.start()
        sender = AudioSender(Tone(sample_rate=16000), AudioEncoder("g722"), relay.address)
        try:
            await sender.start()
            await asyncio.sleep(2.0)
        finally:
            await sender.close()
            await asyncio.sleep(0.3)
            await receiver.close()
            relay.close()
        stats = jb.stats
        assert receiver.concealed > 0 and stats.concealed + stats.expanded == receiver.concealed
        assert stats.played > 50 and receiver.frames >= stats.played
        assert all(f.samples == 320 and f.sample_rate == 16000 for f in frames)  # 20 ms at 16 kHz, lost or not
        assert 0.0 < stats.delay <= 0.3

    run(scenario())
