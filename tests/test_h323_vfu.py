"""A vcore terminal whose decoder needs a keyframe asks a standard H.323 peer for one with H.245
``videoFastUpdatePicture`` (H.245 §7.14.4): such a peer may ignore the RTCP PLI.

The peer is a raw :class:`vcore.h323.CallSession` driven by the test, announcing another product than vcore, that
sends H.264 P-frames only (the stream's IDR "lost"), as a peer joining mid-GOP or losing its first keyframe does.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from vcore.callcontrol import Connected, KeyframeRequested, Released
from vcore.h323 import messages
from vcore.h323.caller import place_call
from vcore.h323.config import SignallingConfig
from vcore.h323.errors import SignallingTimeout
from vcore.h323.fast_connect import MediaPolicy
from vcore.h323.messages import H264_MODE1, PCMU, Address

from .call_helpers import T, run, sources
from .h264_util import encode_clip

H323PLUS_LIKE = {**messages.ENDPOINT_TYPE, "vendor": {**messages.VENDOR, "productId": b"H323Plus",
                                                       "versionId": b"1.28"}}


def _udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


@pytest.mark.parametrize("product", ["H323Plus", "vcore"])
def test_decoder_without_keyframe_sends_video_fast_update(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          product: str) -> None:
    units = encode_clip(tmp_path / "clip.264", frames=15)  # one IDR (with SPS/PPS), then 14 P-frames
    if product != "vcore":
        monkeypatch.setattr(messages, "ENDPOINT_TYPE", H323PLUS_LIKE)  # what our Setup says we are

    async def scenario() -> None:
        import vcore
        from vcore import H264Packetizer

        agent = vcore.Terminal("agent", auto_answer=True, allow_plaintext=True, bitrate=200_000,
                               encoder="libx264", **sources())
        sockets = [_udp() for _ in range(4)]
        try:
            async with agent:
                endpoints = {s: (Address("127.0.0.1", sockets[2 * i].getsockname()[1]),
                                 Address("127.0.0.1", sockets[2 * i + 1].getsockname()[1]))
                             for i, s in enumerate((1, 2))}
                config = SignallingConfig("peer", allow_plaintext_signalling=True,
                                          policy=MediaPolicy((H264_MODE1, PCMU), (), allow_plaintext=True))
                session = await place_call("127.0.0.1", agent.port, config, endpoints)
                try:
                    connected = await session.wait_connected(T)
                    assert isinstance(connected, Connected)
                    video = next(c for c in session.channels if c.direction == "send" and c.format.kind == "video")
                    assert video.remote_rtp is not None
                    packetizer = H264Packetizer(payload_type=video.format.payload_type, ssrc=0x4242, mtu=1200,
                                                mode=1)
                    loop = asyncio.get_running_loop()
                    for i, unit in enumerate(units[1:], start=1):  # the IDR never arrives
                        for packet in packetizer.packetize(unit, timestamp=i * 3000):
                            await loop.sock_sendto(sockets[2], packet.serialize(),
                                                   (video.remote_rtp.host, video.remote_rtp.port))
                        await asyncio.sleep(1 / 30)
                    requested: list[int] = []

                    async def fast_update() -> None:
                        while True:
                            event = await session.next_event(T)
                            if isinstance(event, KeyframeRequested):
                                requested.append(event.number)
                                return
                            assert not isinstance(event, Released), event

                    if product == "vcore":
                        # a vcore peer answers the RTCP PLI: no H.245 request on top (checked for a while)
                        with pytest.raises((asyncio.TimeoutError, SignallingTimeout)):
                            await asyncio.wait_for(fast_update(), 1.5)
                        assert requested == []
                    else:
                        await fast_update()
                        # on our own (peer-to-agent) video channel, which the agent receives
                        assert requested == [video.number]
                finally:
                    await session.hangup()
        finally:
            for s in sockets:
                s.close()

    run(scenario())
