"""One side of an aiortc video call for the ADSL benchmark (the harness runs both sides in two netns).

    python benchmarks/adsl_aiortc.py send --dir DIR --host IP --seconds N --out FILE.jsonl
    python benchmarks/adsl_aiortc.py recv --dir DIR --host IP --seconds N --out FILE.jsonl

What is measured: how aiortc (as shipped: libx264 Baseline, its REMB-driven
encoder target clamped by aiortc to 0.5-3 Mbit/s, jitter buffer, NACK/PLI) carries
a 720p30 call over the link. The sender sends the stamped testsrc2 picture of
``adsl_stamp`` (H.264 only) plus a silent PCMU audio track, as vcore's calls
do; the receiver reads the stamp back from every decoded picture, so frame
rate, loss, freezes and capture-to-display latency (``t - capture_ms / 1000``,
both ``CLOCK_MONOTONIC``) come out the same way as for vcore.

ICE gathers exactly one host candidate, ``--host`` (``aioice.ice.
get_host_addresses`` is patched; it would leave 127.0.0.1 out), with no STUN.
Signalling: the sender writes ``DIR/offer.json`` once ICE gathering is
complete, the receiver answers in ``DIR/answer.json`` (both written atomically;
DIR should be fresh). Both sides run ``--seconds`` after the connection state
reaches "connected", close the peer connection and exit 0 (1 with a one-line
``error: ...`` on stderr on failure).

Output (JSON lines, flushed one by one): a ``start`` line when connected
(negotiated codecs, selected ICE pair); the sender then writes every second
``{"kind": "send", "t", "target", "bytes", "payload_bytes", "codec_bitrate"}`` --
``target`` is the H264Encoder's ``target_bitrate`` (bit/s, null before the first
frame is encoded), ``codec_bitrate`` the bit rate its libx264 context was
opened with (aiortc reopens it, with a new IDR, only when the target moves by
more than 10 %), ``bytes`` counts serialized video RTP packets (header + extensions +
payload, NACK retransmissions included, before SRTP), ``payload_bytes`` is
getStats() outbound-rtp ``bytesSent`` (aiortc counts payload only). The receiver
writes ``{"kind": "frame", "t", "index", "capture_ms", "w", "h"}`` per decoded
picture (and saves the luma of every 30th index as ``DIR/aiortc_y_{n}.npy``),
then ``{"kind": "audio", "frames"}``. Both end with ``{"kind": "end", "t"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import re
import sys
import time
from fractions import Fraction
from typing import Any, TextIO

import aioice.ice
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from adsl_stamp import StampedFrames, luma, read_stamp  # this script's folder is on sys.path

VIDEO_CLOCK_RATE = 90_000
SIGNAL_TIMEOUT = 30.0
CONNECT_TIMEOUT = 30.0


class Out:
    """A JSON-lines file, flushed after every line."""

    def __init__(self, path: str) -> None:
        self._file: TextIO = open(path, "a", encoding="utf-8")

    def write(self, **record: Any) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _host_only(host: str) -> None:
    def only(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return [host]

    aioice.ice.get_host_addresses = only


def _write_sdp(path: str, desc: Any) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"sdp": desc.sdp, "type": desc.type}, f)
    os.replace(tmp, path)


async def _read_sdp(path: str) -> RTCSessionDescription:
    deadline = time.monotonic() + SIGNAL_TIMEOUT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {os.path.basename(path)} after {SIGNAL_TIMEOUT:.0f} s")
        await asyncio.sleep(0.05)
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    return RTCSessionDescription(sdp=d["sdp"], type=d["type"])


def _connected_event(pc: Any) -> asyncio.Event:
    connected = asyncio.Event()

    @pc.on("connectionstatechange")  # type: ignore[untyped-decorator]
    def on_state() -> None:
        if pc.connectionState == "connected":
            connected.set()

    return connected


async def _wait_connected(pc: Any, connected: asyncio.Event, out: Out) -> None:
    try:
        await asyncio.wait_for(connected.wait(), CONNECT_TIMEOUT)
    except TimeoutError:
        raise RuntimeError(f"not connected after {CONNECT_TIMEOUT:.0f} s (state {pc.connectionState})") from None
    pair = None
    try:  # aioice internals, informative only
        ice = pc.getTransceivers()[0].receiver.transport.transport
        p = next(iter(ice._connection._nominated.values()))
        pair = [list(p.local_addr), list(p.remote_addr)]
    except Exception:
        pass
    answer = pc.localDescription if pc.localDescription.type == "answer" else pc.remoteDescription
    codecs = sorted(set(re.findall(r"a=rtpmap:\d+ ([\w-]+)/", answer.sdp)))
    out.write(kind="start", t=time.monotonic(), codecs=codecs, pair=pair)


class StampedTrack(MediaStreamTrack):
    """The sending video track: ``StampedFrames`` read in a thread of its own, 90 kHz pts from capture time."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.source = StampedFrames()
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="stamped-frames")
        self._t0: float | None = None

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        frame, t = await asyncio.get_running_loop().run_in_executor(self.pool, self.source.next)
        if self._t0 is None:
            self._t0 = t
        frame.pts = round((t - self._t0) * VIDEO_CLOCK_RATE)
        frame.time_base = Fraction(1, VIDEO_CLOCK_RATE)
        return frame


async def _send(args: argparse.Namespace, out: Out) -> None:
    answer_path = os.path.join(args.dir, "answer.json")
    if os.path.exists(answer_path):  # stale, from an earlier run
        os.remove(answer_path)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = StampedTrack()
    try:
        connected = _connected_event(pc)
        vt = pc.addTransceiver(video, direction="sendonly")
        vt.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                if c.mimeType == "video/H264"])
        at = pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        at.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("audio").codecs
                                if c.mimeType == "audio/PCMU"])
        await pc.setLocalDescription(await pc.createOffer())  # returns once ICE gathering is complete
        _write_sdp(os.path.join(args.dir, "offer.json"), pc.localDescription)
        await pc.setRemoteDescription(await _read_sdp(answer_path))
        await _wait_connected(pc, connected, out)

        sender = vt.sender
        counted = {"bytes": 0}
        try:  # count whole serialized RTP packets of the video SSRCs on the DTLS transport
            dtls = sender.transport
            original = dtls._send_rtp
            ssrcs = {sender._ssrc, sender._rtx_ssrc}

            async def counting_send_rtp(data: bytes) -> None:
                await original(data)
                if len(data) >= 12 and not 192 <= data[1] <= 223 and int.from_bytes(data[8:12], "big") in ssrcs:
                    counted["bytes"] += len(data)

            dtls._send_rtp = counting_send_rtp  # type: ignore[method-assign]
            hooked = True
        except AttributeError:
            hooked = False

        end = time.monotonic() + args.seconds
        while (left := end - time.monotonic()) > 1e-3:
            await asyncio.sleep(min(1.0, left))
            encoder = getattr(sender, "_RTCRtpSender__encoder", None)  # None until the first frame
            target = getattr(encoder, "target_bitrate", None)
            codec = getattr(encoder, "codec", None)  # the open libx264 context (reopened at > 10 % change)
            payload = None
            for report in (await sender.getStats()).values():
                if report.type == "outbound-rtp":
                    payload = report.bytesSent
            out.write(kind="send", t=time.monotonic(), target=target, bytes=counted["bytes"] if hooked else payload,
                      payload_bytes=payload, codec_bitrate=getattr(codec, "bit_rate", None))
    finally:
        await pc.close()
        video.pool.shutdown(wait=True)
        video.source.close()


async def _recv(args: argparse.Namespace, out: Out) -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tasks: list[asyncio.Task[None]] = []
    audio_frames = 0

    async def consume_video(track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            t = time.monotonic()
            y = luma(frame)
            stamp = read_stamp(y)
            n, ms = stamp if stamp is not None else (None, None)
            out.write(kind="frame", t=t, index=n, capture_ms=ms, w=frame.width, h=frame.height)
            if n is not None and n % 30 == 0:
                np.save(os.path.join(args.dir, f"aiortc_y_{n}.npy"), y)

    async def consume_audio(track: Any) -> None:
        nonlocal audio_frames
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            audio_frames += 1

    @pc.on("track")
    def on_track(track: Any) -> None:
        tasks.append(asyncio.create_task(consume_video(track) if track.kind == "video" else consume_audio(track)))

    try:
        connected = _connected_event(pc)
        await pc.setRemoteDescription(await _read_sdp(os.path.join(args.dir, "offer.json")))
        await pc.setLocalDescription(await pc.createAnswer())
        _write_sdp(os.path.join(args.dir, "answer.json"), pc.localDescription)
        await _wait_connected(pc, connected, out)
        await asyncio.sleep(args.seconds)
    finally:
        await pc.close()
        for task in tasks:
            await asyncio.wait_for(task, 5.0)
    out.write(kind="audio", frames=audio_frames)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("role", choices=["send", "recv"])
    p.add_argument("--dir", required=True, help="signalling folder shared by both sides")
    p.add_argument("--host", required=True, help="this namespace's own IPv4 address (the only ICE candidate)")
    p.add_argument("--seconds", type=float, required=True, help="call length after connecting")
    p.add_argument("--out", required=True, help="JSON-lines output file (appended)")
    args = p.parse_args(argv)
    try:
        _host_only(args.host)
        out = Out(args.out)
        try:
            asyncio.run(_send(args, out) if args.role == "send" else _recv(args, out))
            out.write(kind="end", t=time.monotonic())
        finally:
            out.close()
    except Exception as e:  # noqa: BLE001 - one line for the harness, no traceback
        print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
