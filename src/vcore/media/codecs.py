"""Codecs on PyAV: H.264 with conferencing defaults, G.711/G.722/Opus speech.

H.264 (ITU-T H.264, RTP RFC 6184): :class:`H264Encoder` produces Annex B
:class:`~vcore.payload.h264.AccessUnit` objects with constrained baseline
profile, zero-latency tuning, no B-frames, periodic and on-demand IDR pictures,
SPS/PPS in-band before every IDR (a receiver can join mid-stream) and runtime
bitrate and frame-rate changes. :class:`H264Decoder` survives corrupt or
missing data: it reports the damage and resumes at the next keyframe.

Audio: :class:`AudioEncoder` / :class:`AudioDecoder` for PCMU/PCMA (through
vcore's G.711 kernels), G.722 and Opus (through PyAV), with resampling and
20 ms framing by :class:`AudioFramer`.

PyAV releases the GIL while it encodes and decodes, so these objects are meant
to run in worker threads. None of them is thread-safe: use each from one
thread at a time (``H264Encoder.request_keyframe`` and the ``bitrate`` / ``fps``
setters are the exceptions: they only set fields the encoding thread reads).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.error
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.codec.context import CodecContext
from av.video.frame import PictureType, VideoFrame

from ..payload import g711
from ..payload.h264 import AccessUnit, split_annexb
from .clock import MediaClock
from .errors import DecoderError, EncoderError

_log = logging.getLogger(__name__)

__all__ = [
    "H264Encoder",
    "H264Decoder",
    "H264Level",
    "ProfileLevelId",
    "parse_profile_level_id",
    "max_resolution",
    "available_h264_encoders",
    "sps_info",
    "AudioFramer",
    "AudioEncoder",
    "AudioDecoder",
    "AUDIO_CODECS",
    "AudioCodecInfo",
    "VIDEO_CLOCK_RATE",
]

VIDEO_CLOCK_RATE = 90000  # RFC 6184 §8.2.1
_TB90K = Fraction(1, VIDEO_CLOCK_RATE)

NAL_TYPE_IDR = 5  # H.264 Table 7-1
NAL_TYPE_SPS = 7
NAL_TYPE_PPS = 8

PROFILE_IDC_BASELINE = 66  # H.264 Annex A.2.1
CONSTRAINT_SET1 = 0x40  # constraint_set1_flag in the profile-iop byte: constrained baseline (A.2.1.1)

HARDWARE_H264_ENCODERS = ("h264_v4l2m2m", "h264_vaapi", "h264_nvenc", "h264_qsv")

# ---------------------------------------------------------------------------
# profile-level-id (RFC 6184 §8.1) and the level limits of H.264 Table A-1
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class H264Level:
    """Limits of one H.264 level (Table A-1): macroblocks per second and per frame, kbit/s."""

    level_idc: int
    max_mbps: int
    max_fs: int
    max_br_kbps: int


_LEVELS = {
    10: H264Level(10, 1485, 99, 64),
    11: H264Level(11, 3000, 396, 192),
    12: H264Level(12, 6000, 396, 384),
    13: H264Level(13, 11880, 396, 768),
    20: H264Level(20, 11880, 396, 2000),
    21: H264Level(21, 19800, 792, 4000),
    22: H264Level(22, 20250, 1620, 4000),
    30: H264Level(30, 40500, 1620, 10000),
    31: H264Level(31, 108000, 3600, 14000),
    32: H264Level(32, 216000, 5120, 20000),
    40: H264Level(40, 245760, 8192, 20000),
    41: H264Level(41, 245760, 8192, 50000),
    42: H264Level(42, 522240, 8704, 50000),
    50: H264Level(50, 589824, 22080, 135000),
    51: H264Level(51, 983040, 36864, 240000),
    52: H264Level(52, 2073600, 36864, 240000),
}

# Picture sizes an H.323-era peer expects, largest first.
_STANDARD_SIZES = (
    (1920, 1080),
    (1280, 720),
    (1024, 576),
    (960, 540),
    (704, 576),  # 4CIF
    (640, 480),
    (640, 360),
    (352, 288),  # CIF
    (320, 240),
    (176, 144),  # QCIF
    (128, 96),  # SQCIF
)


@dataclass(frozen=True)
class ProfileLevelId:
    """The three bytes of an SDP/H.241 ``profile-level-id`` (RFC 6184 §8.1)."""

    profile_idc: int
    profile_iop: int
    level_idc: int

    @property
    def constrained_baseline(self) -> bool:
        """Baseline with constraint_set1 (or Main/Extended with the bits that make it CB)."""
        if self.profile_idc == PROFILE_IDC_BASELINE:
            return bool(self.profile_iop & CONSTRAINT_SET1)
        return self.profile_idc in (77, 88) and bool(self.profile_iop & 0x80)

    @property
    def level(self) -> H264Level:
        """Limits of the level; level 1b (level_idc 11 with constraint_set3 in baseline) maps to 1.1's row."""
        try:
            return _LEVELS[self.level_idc]
        except KeyError:
            raise ValueError(f"H.264 level_idc {self.level_idc} is not in Table A-1") from None

    def __str__(self) -> str:
        return f"{self.profile_idc:02x}{self.profile_iop:02x}{self.level_idc:02x}"


def parse_profile_level_id(value: str) -> ProfileLevelId:
    """Parse a 6-hex-digit ``profile-level-id`` such as ``"42e01f"``; ``ValueError`` otherwise."""
    text = value.strip()
    if len(text) != 6:
        raise ValueError(f"profile-level-id {value!r} is not 6 hex digits")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"profile-level-id {value!r} is not 6 hex digits") from None
    pli = ProfileLevelId(raw[0], raw[1], raw[2])
    pli.level  # validate
    return pli


def max_resolution(level_idc: int, fps: float) -> tuple[int, int]:
    """The largest standard picture size a decoder of this level accepts at ``fps`` (Table A-1, A.3.1)."""
    level = ProfileLevelId(PROFILE_IDC_BASELINE, 0xE0, level_idc).level
    for w, h in _STANDARD_SIZES:
        mbs = ((w + 15) // 16) * ((h + 15) // 16)
        side_limit = (8 * level.max_fs) ** 0.5  # A.3.1 f/g: each dimension <= sqrt(8*MaxFS) MBs
        if mbs <= level.max_fs and mbs * fps <= level.max_mbps and max(w, h) / 16 <= side_limit:
            return w, h
    return _STANDARD_SIZES[-1]


def sps_info(access_unit: bytes) -> dict[str, int] | None:
    """profile_idc, constraint flags byte and level_idc of the first SPS in an Annex B unit (None if none)."""
    for nal in split_annexb(access_unit):
        if nal and nal[0] & 0x1F == NAL_TYPE_SPS and len(nal) >= 4:
            return {"profile_idc": nal[1], "constraint_flags": nal[2], "level_idc": nal[3]}
    return None


def _nal_types(data: bytes) -> set[int]:
    return {nal[0] & 0x1F for nal in split_annexb(data) if nal}


def _parameter_sets_of(extradata: bytes) -> bytes:
    """SPS and PPS of encoder extradata (Annex B, or avcC: ISO/IEC 14496-15 §5.3.3.1) as Annex B."""
    if not extradata:
        return b""
    if extradata[0] != 1:  # already Annex B
        nals = [n for n in split_annexb(extradata) if n and n[0] & 0x1F in (NAL_TYPE_SPS, NAL_TYPE_PPS)]
        return b"".join(b"\x00\x00\x00\x01" + n for n in nals)
    out = []
    pos = 5
    try:
        for count_mask in (0x1F, 0xFF):  # numOfSequenceParameterSets, then numOfPictureParameterSets
            count = extradata[pos] & count_mask
            pos += 1
            for _ in range(count):
                size = int.from_bytes(extradata[pos : pos + 2], "big")
                out.append(b"\x00\x00\x00\x01" + extradata[pos + 2 : pos + 2 + size])
                pos += 2 + size
    except IndexError:
        return b""
    return b"".join(out)


# ---------------------------------------------------------------------------
# Encoder choice: probe once, never crash
# ---------------------------------------------------------------------------

_probe_lock = threading.Lock()
_probe_result: list[str] | None = None


def _encoder_options(codec: str, preset: str) -> dict[str, str]:
    if codec == "libx264":
        return {
            "preset": preset,
            "tune": "zerolatency",
            "profile": "baseline",
            "forced-idr": "1",
        }
    if codec == "h264_nvenc":
        return {"preset": "p1", "tune": "ull", "zerolatency": "1", "profile": "baseline", "forced-idr": "1"}
    if codec == "h264_qsv":
        return {"preset": "veryfast", "profile": "baseline", "forced_idr": "1"}
    return {}


def _try_encoder(name: str) -> bool:
    try:
        ctx = CodecContext.create(name, "w")
        ctx.width, ctx.height = 320, 240  # type: ignore[attr-defined]
        ctx.pix_fmt = "yuv420p"  # type: ignore[attr-defined]
        ctx.time_base = Fraction(1, 30)
        ctx.framerate = Fraction(30)  # type: ignore[attr-defined]
        ctx.bit_rate = 300_000
        ctx.options = _encoder_options(name, "ultrafast")
        ctx.open()
        frame = VideoFrame(320, 240, "yuv420p")
        frame.pts = 0
        ok = bool(ctx.encode(frame) + ctx.encode(None))  # type: ignore[attr-defined]
        return ok
    except Exception as exc:  # any failure means "not usable here"
        _log.debug("H.264 encoder %s not usable: %s", name, exc)
        return False


def available_h264_encoders(refresh: bool = False) -> list[str]:
    """H.264 encoders that open and encode a frame here, hardware first, libx264 last.

    Probed once per process (thread-safe) unless ``refresh``; a missing device or
    driver just leaves that encoder out.
    """
    global _probe_result
    with _probe_lock:
        if _probe_result is None or refresh:
            found = [name for name in HARDWARE_H264_ENCODERS if name in av.codecs_available and _try_encoder(name)]
            if "libx264" in av.codecs_available:
                found.append("libx264")
            _probe_result = found
            _log.info("H.264 encoders usable here: %s", ", ".join(found) or "none")
        return list(_probe_result)


# ---------------------------------------------------------------------------
# H.264 encoder
# ---------------------------------------------------------------------------


class H264Encoder:
    """H.264 encoder with conferencing defaults; ``encode(frame) -> list[AccessUnit]``.

    ``codec="auto"`` picks the first usable encoder of
    :func:`available_h264_encoders` (hardware when present, else libx264); a
    name forces that encoder. ``profile_level_id`` (e.g. ``"42e01f"``) sets the
    level and, when ``width``/``height`` are not given, the largest standard size
    it allows. ``idr_interval`` seconds between periodic IDR pictures;
    ``max_slice_size`` bytes per slice (for packetization mode 0 peers).

    Every IDR unit carries SPS and PPS in-band (libx264 repeats them; for an
    encoder that keeps them in extradata they are added), so a receiver can
    join at any keyframe.

    Input frames are converted to the encoder's size and pixel format when they
    differ. A frame's capture time is ``frame.time`` (sources stamp
    ``time.monotonic()``); access units get RTP timestamps from ``clock``
    (a :class:`MediaClock` at 90 kHz, made here when not given).

    ``bitrate`` and ``fps`` may be changed at any time (from any thread); a lower
    ``fps`` than the source's drops input frames evenly. ``request_keyframe()``
    makes the next encoded picture an IDR. ``max_bitrate`` (default: ``bitrate``)
    is the encoder's peak (VBV) rate: the bitrate moves in place below it, while
    a bitrate above it reopens the encoder (an IDR). ``vbv_buffer``: the VBV
    buffer in seconds of the peak rate (1 s by default; smaller bounds the size
    of a keyframe, which a thin line needs). ``resize(width, height)`` changes
    the picture size, ``reopen(bitrate, peak)`` the rate and peak, from the next
    frame on (both reopen the encoder: an IDR).
    """

    def __init__(
        self,
        width: int | None = None,
        height: int | None = None,
        fps: float = 30.0,
        bitrate: int = 1_500_000,
        *,
        codec: str = "auto",
        profile_level_id: str | None = None,
        idr_interval: float = 5.0,
        max_slice_size: int | None = None,
        preset: str = "ultrafast",
        threads: int = 0,
        clock: MediaClock | None = None,
        max_bitrate: int | None = None,
        vbv_buffer: float = 1.0,
    ) -> None:
        pli = parse_profile_level_id(profile_level_id) if profile_level_id else None
        if width is None or height is None:
            if pli is not None:
                width, height = max_resolution(pli.level_idc, fps)
            else:
                width, height = width or 1280, height or 720
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise EncoderError(f"H.264 picture size {width}x{height} must be positive and even")
        if fps <= 0:
            raise EncoderError(f"frame rate {fps} must be positive")
        if bitrate <= 0 or (max_bitrate is not None and max_bitrate <= 0):
            raise EncoderError(f"bitrate {bitrate} (max {max_bitrate}) must be positive")
        self.width = width
        self.height = height
        self.clock = clock if clock is not None else MediaClock(VIDEO_CLOCK_RATE)
        self.profile_level_id = pli
        self._fps = float(fps)
        self._bitrate = int(bitrate)
        self.max_bitrate = int(max_bitrate) if max_bitrate is not None else int(bitrate)
        if not 0.05 <= vbv_buffer <= 10:
            raise EncoderError(f"vbv_buffer {vbv_buffer} s is out of range (0.05 to 10)")
        self.vbv_buffer = vbv_buffer
        self.vbv_bits: int | None = None  # when set: the VBV buffer in bits, whatever the peak
        self._pending_reopen = False
        self.reopens = 0
        self._pending_size: tuple[int, int] | None = None
        self._pending_lock = threading.Lock()  # resize()/reopen() (any thread) against encode()
        self.resizes = 0
        self._keyframe_requested = False
        self._next_due: float | None = None
        self._last_pts = -1
        self._t0: float | None = None
        self._pending: dict[int, float] = {}
        self._parameter_sets: bytes | None = None
        self.frames_in = 0
        self.frames_dropped = 0
        self.units_out = 0
        self.keyframes_out = 0

        candidates = available_h264_encoders() if codec == "auto" else [codec]
        if not candidates:
            raise EncoderError("no H.264 encoder is available (PyAV built without libx264?)")
        errors = []
        self._open_args = (fps, idr_interval, max_slice_size, preset, threads, pli)
        for name in candidates:
            try:
                self._ctx = self._open(name, *self._open_args)
                self.codec_name = name
                break
            except EncoderError as exc:
                errors.append(str(exc))
                _log.warning("%s", exc)
        else:
            raise EncoderError("; ".join(errors))
        self._pix_fmt = self._ctx.pix_fmt  # type: ignore[attr-defined]

    def _open(
        self,
        name: str,
        fps: float,
        idr_interval: float,
        max_slice_size: int | None,
        preset: str,
        threads: int,
        pli: ProfileLevelId | None,
    ) -> CodecContext:
        try:
            ctx = CodecContext.create(name, "w")
        except Exception as exc:
            raise EncoderError(f"H.264 encoder {name!r} is not available: {exc}") from exc
        ctx.width = self.width  # type: ignore[attr-defined]
        ctx.height = self.height  # type: ignore[attr-defined]
        ctx.pix_fmt = "nv12" if name in ("h264_vaapi", "h264_qsv") else "yuv420p"  # type: ignore[attr-defined]
        ctx.time_base = _TB90K
        fps = self._fps  # the rate control's frame rate: the one the encoder runs at now
        self._opened_fps = fps
        ctx.framerate = Fraction(fps).limit_denominator(1001)  # type: ignore[attr-defined]
        # Opened at the peak: libx264 retargets its rate control downward in place, not upward
        # (measured: opened at 300 kbit/s, set to 500 kbit/s, it kept making 310 kbit/s);
        # ``_apply_bitrate`` sets the target before the first frame.
        ctx.bit_rate = max(self._bitrate, self.max_bitrate)
        ctx.gop_size = max(1, round(fps * idr_interval))  # type: ignore[attr-defined]
        ctx.max_b_frames = 0  # type: ignore[attr-defined]
        ctx.thread_count = threads
        options = _encoder_options(name, preset)
        if name == "libx264":
            params = ["scenecut=0", "repeat-headers=1"]
            if max_slice_size:
                params.append(f"slice-max-size={max_slice_size}")
            options["x264-params"] = ":".join(params)
            peak = max(self._bitrate, self.max_bitrate)
            options["maxrate"] = str(peak)  # VBV: the peak rate (the target, or the given maximum),
            # the buffer bounds a keyframe's size: vbv_buffer seconds of the peak, or vbv_bits when set
            # (a sender under congestion control sizes it from the line's rate, and keeps the peak
            # high so that the rate can rise in place, without reopening: an IDR)
            buffer = self.vbv_bits if self.vbv_bits is not None else round(peak * self.vbv_buffer)
            options["bufsize"] = str(max(1000, buffer))
            if pli is not None:
                options["level"] = f"{pli.level_idc // 10}.{pli.level_idc % 10}"
        ctx.options = options
        try:
            ctx.open()
        except Exception as exc:
            raise EncoderError(f"H.264 encoder {name!r} failed to open: {exc}") from exc
        self._vbv_rate = max(self._bitrate, self.max_bitrate)
        return ctx

    # -- runtime controls (safe to call from another thread) --------------------

    @property
    def bitrate(self) -> int:
        """Target bitrate in bit/s; settable at run time."""
        return self._bitrate

    @bitrate.setter
    def bitrate(self, value: int) -> None:
        if value <= 0:
            raise ValueError("bitrate must be positive")
        self._bitrate = int(value)

    @property
    def fps(self) -> float:
        """Maximum encoded frame rate; settable at run time (lower than the source's drops frames)."""
        return self._fps

    @fps.setter
    def fps(self, value: float) -> None:
        if value <= 0:
            raise ValueError("fps must be positive")
        self._fps = float(value)

    def request_keyframe(self) -> None:
        """Make the next encoded picture an IDR (with SPS/PPS in front)."""
        self._keyframe_requested = True

    @property
    def keyframe_pending(self) -> bool:
        """True when the next encoded picture will be an IDR (requested, a size change, a reopen)."""
        return self._keyframe_requested or self._pending_size is not None or self._pending_reopen

    @property
    def peak(self) -> int:
        """The VBV peak rate (bit/s) the encoder runs with now: ``bitrate`` moves in place up to it."""
        return self._vbv_rate

    def reopen(self, bitrate: int, peak: int, *, buffer_bits: int | None = None) -> None:
        """From the next frame on: encode at ``bitrate`` with VBV peak ``peak`` (thread-safe; an IDR).

        ``buffer_bits``: the VBV buffer (bounds the keyframe's size); default ``vbv_bits`` or
        ``vbv_buffer`` seconds of the peak.
        """
        if bitrate <= 0 or peak < bitrate:
            raise EncoderError(f"reopen needs 0 < bitrate ({bitrate}) <= peak ({peak})")
        if buffer_bits is not None and buffer_bits <= 0:
            raise EncoderError(f"VBV buffer {buffer_bits} bits must be positive")
        with self._pending_lock:
            if buffer_bits is not None:
                self.vbv_bits = int(buffer_bits)
            self.max_bitrate = int(peak)
            self._bitrate = int(bitrate)
            self._pending_reopen = True

    def resize(self, width: int, height: int) -> None:
        """Encode at ``width`` × ``height`` from the next frame on (thread-safe; the encoder reopens, an IDR)."""
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise EncoderError(f"H.264 picture size {width}x{height} must be positive and even")
        with self._pending_lock:
            self._pending_size = (int(width), int(height))

    def _apply_pending(self) -> None:
        """In the encode thread: a size change and/or a reopen asked for since the last frame."""
        with self._pending_lock:
            size, self._pending_size = self._pending_size, None
            reopen, self._pending_reopen = self._pending_reopen, False
        if size is not None and size != (self.width, self.height):
            _log.info("%s: %dx%d -> %dx%d", self.codec_name, self.width, self.height, *size)
            self.width, self.height = size
            self.resizes += 1
        elif not reopen:
            return
        else:
            self.reopens += 1
        self._ctx = self._open(self.codec_name, *self._open_args)  # the old context is freed with its last reference
        self._keyframe_requested = True

    # -- encoding ----------------------------------------------------------------

    def _apply_bitrate(self) -> None:
        ctx: Any = self._ctx
        # The rate control shares the bitrate among the frames of the frame rate it was opened
        # with; when fewer frames come (``fps`` lowered), each gets proportionally more.
        opened_fps = self._opened_fps
        wanted = round(self._bitrate * max(1.0, opened_fps / self._fps))
        if ctx.bit_rate == wanted:
            return
        if self._bitrate <= self._vbv_rate:
            # libx264 (and most encoders) retarget their rate control in place; the VBV peak
            # stays at the rate the encoder was opened with.
            ctx.bit_rate = wanted
            return
        # above the VBV peak: reopen at the new rate (the next picture is an IDR)
        _log.info("reopening %s for %d bit/s", self.codec_name, self._bitrate)
        self._ctx = self._open(self.codec_name, *self._open_args)
        self._keyframe_requested = True

    def encode(self, frame: VideoFrame, capture_time: float | None = None) -> list[AccessUnit]:
        """Encode one frame; returns the access units that came out (usually one, or none when dropped).

        ``capture_time`` defaults to ``frame.time``, else to now.
        """
        if capture_time is None:
            t = frame.time
            capture_time = time.monotonic() if t is None else float(t)
        self.frames_in += 1
        period = 1.0 / self._fps
        if self._next_due is not None and capture_time + 0.25 * period < self._next_due:
            self.frames_dropped += 1
            return []
        self._next_due = max((self._next_due or capture_time) + period, capture_time - period)
        if self._t0 is None:
            self._t0 = capture_time
        if self._pending_size is not None or self._pending_reopen:
            self._apply_pending()
        if frame.width != self.width or frame.height != self.height or frame.format.name != self._pix_fmt:
            frame = frame.reformat(width=self.width, height=self.height, format=self._pix_fmt)
        pts = max(round((capture_time - self._t0) * VIDEO_CLOCK_RATE), self._last_pts + 1)
        self._last_pts = pts
        stamp = (frame.pts, frame.time_base)
        frame.pts = pts
        frame.time_base = _TB90K
        if self._keyframe_requested:
            self._keyframe_requested = False
            frame.pict_type = PictureType.I
        else:
            frame.pict_type = PictureType.NONE  # decoded frames arrive marked I: never force by accident
        self._apply_bitrate()
        self._pending[pts] = capture_time
        try:
            packets = self._ctx.encode(frame)  # type: ignore[attr-defined]
        except av.error.FFmpegError as exc:
            raise EncoderError(f"H.264 encoding failed: {exc}") from exc
        finally:
            frame.pts, frame.time_base = stamp  # the caller's frame keeps its capture stamp
        return self._units(packets)

    def flush(self) -> list[AccessUnit]:
        """Drain the encoder (end of stream); it cannot encode afterwards."""
        try:
            packets = self._ctx.encode(None)  # type: ignore[attr-defined]
        except av.error.FFmpegError as exc:
            raise EncoderError(f"H.264 encoder flush failed: {exc}") from exc
        return self._units(packets)

    def capture_time_of(self, unit: AccessUnit) -> float:
        """The capture time of a unit this encoder produced (from its RTP timestamp)."""
        return self.clock.capture_time(unit.timestamp, time.monotonic())

    def _units(self, packets: list[Any]) -> list[AccessUnit]:
        out = []
        for p in packets:
            pts = p.pts if p.pts is not None else self._last_pts
            t = self._pending.pop(pts, None)
            if t is None:
                t = (self._t0 or 0.0) + pts / VIDEO_CLOCK_RATE
            key = bool(p.is_keyframe)
            data = bytes(p)
            if key:
                data = self._with_parameter_sets(data)
            out.append(AccessUnit(data, self.clock.rtp_timestamp(t), key, True))
            self.units_out += 1
            if key:
                self.keyframes_out += 1
        if len(self._pending) > 64:  # an encoder that swallowed frames: forget the oldest
            for k in sorted(self._pending)[:-32]:
                del self._pending[k]
        return out

    def _with_parameter_sets(self, data: bytes) -> bytes:
        # Every IDR must carry SPS/PPS in-band (a receiver may join at any keyframe). libx264
        # does so itself; for an encoder that puts them only in extradata, add them here.
        nals = split_annexb(data)
        params = [n for n in nals if n and n[0] & 0x1F in (NAL_TYPE_SPS, NAL_TYPE_PPS)]
        if params:
            self._parameter_sets = b"".join(b"\x00\x00\x00\x01" + n for n in params)
            return data
        if self._parameter_sets is None:
            self._parameter_sets = _parameter_sets_of(self._ctx.extradata or b"")
        return self._parameter_sets + data

    def close(self) -> None:
        """Release the encoder (idempotent)."""
        self._pending.clear()

    def __repr__(self) -> str:
        return (
            f"H264Encoder({self.codec_name}, {self.width}x{self.height}, {self._fps:g} fps, "
            f"{self._bitrate} bit/s)"
        )


# ---------------------------------------------------------------------------
# H.264 decoder
# ---------------------------------------------------------------------------


class H264Decoder:
    """H.264 decoder that survives corrupt and missing data.

    ``decode(unit)`` takes an :class:`AccessUnit` (or Annex B bytes) and returns
    the decoded frames (``frame.pts`` is the unit's RTP timestamp, time base
    1/90000). It starts by waiting for a keyframe. An incomplete unit, a
    decoding error or a frame FFmpeg flags as corrupt is counted in ``errors``,
    logged, stored in ``last_error`` and makes the decoder skip units (counted in
    ``skipped``) until the next keyframe; ``keyframe_needed`` is True while it
    waits for one after damage or after joining mid-stream (send a PLI).

    ``threads=1`` (the default) decodes each unit at once: no frame-threading delay.
    """

    def __init__(self, *, threads: int = 1, codec: str = "h264") -> None:
        try:
            self._ctx = CodecContext.create(codec, "r")
            self._ctx.thread_count = threads
            self._ctx.open()
        except Exception as exc:
            raise DecoderError(f"H.264 decoder {codec!r} failed to open: {exc}") from exc
        self._waiting = True
        self.keyframe_needed = False
        self.frames = 0
        self.errors = 0
        self.skipped = 0
        self.last_error: str | None = None

    def _damage(self, reason: str) -> None:
        self.errors += 1
        self.last_error = reason
        self._waiting = True
        self.keyframe_needed = True
        _log.info("H.264 decoder: %s; waiting for the next keyframe", reason)

    def mark_gap(self, reason: str) -> None:
        """Tell the decoder that units were lost before it saw them: it waits for the next keyframe."""
        self._damage(reason)

    def decode(self, unit: AccessUnit | bytes) -> list[VideoFrame]:
        """Decode one access unit; never raises on bad data (see the class notes)."""
        if isinstance(unit, AccessUnit):
            data, keyframe, complete, ts = unit.data, unit.keyframe, unit.complete, unit.timestamp
        else:
            data = bytes(unit)
            types = _nal_types(data)
            keyframe = NAL_TYPE_IDR in types
            complete, ts = True, None
        if not complete:
            self._damage("incomplete access unit (packets lost)")
            return []
        if self._waiting and not keyframe:
            self.skipped += 1
            self.keyframe_needed = True
            return []
        packet = av.Packet(data)
        if ts is not None:
            packet.pts = ts
            packet.time_base = _TB90K
        try:
            frames: list[VideoFrame] = self._ctx.decode(packet)  # type: ignore[attr-defined]
        except av.error.FFmpegError as exc:
            self._damage(f"decoding error: {exc}")
            return []
        good = []
        for f in frames:
            if f.is_corrupt:
                self._damage("corrupt picture")
                break
            good.append(f)
        if good and keyframe and len(good) == len(frames):
            self._waiting = False
            self.keyframe_needed = False
        self.frames += len(good)
        return good

    def close(self) -> None:
        """Release the decoder (idempotent)."""
        self._waiting = True


# ---------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioCodecInfo:
    """An RTP speech codec: FFmpeg codec, PCM rate, RTP clock rate and static payload type (RFC 3551)."""

    name: str
    ffmpeg: str | None
    sample_rate: int
    clock_rate: int
    payload_type: int | None


AUDIO_CODECS: dict[str, AudioCodecInfo] = {
    "pcmu": AudioCodecInfo("pcmu", None, 8000, 8000, 0),  # through vcore's G.711 kernels
    "pcma": AudioCodecInfo("pcma", None, 8000, 8000, 8),
    "g722": AudioCodecInfo("g722", "g722", 16000, 8000, 9),  # RFC 3551 §4.5.2: 8000 by mistake, kept
    "opus": AudioCodecInfo("opus", "libopus", 48000, 48000, None),  # RFC 7587: dynamic PT
}


class AudioFramer:
    """Resample any audio frames to mono s16 at ``sample_rate`` and cut them into ``ptime`` frames.

    ``push(frame)`` returns the whole frames available so far; the rest waits
    for the next push. Not thread-safe.
    """

    def __init__(self, sample_rate: int, ptime: float = 0.02, layout: str = "mono") -> None:
        self.sample_rate = sample_rate
        self.samples_per_frame = round(sample_rate * ptime)
        self._resampler = AudioResampler(
            format="s16", layout=layout, rate=sample_rate, frame_size=self.samples_per_frame
        )

    def push(self, frame: AudioFrame | None) -> list[AudioFrame]:
        """Frames of exactly ``samples_per_frame`` samples (``None`` flushes the remainder)."""
        out = self._resampler.resample(frame)
        return [f for f in out if f.samples == self.samples_per_frame or frame is None]


class AudioEncoder:
    """Speech encoder producing one RTP payload per ``ptime`` (20 ms).

    ``codec``: ``"pcmu"``, ``"pcma"``, ``"g722"`` or ``"opus"``. Input frames may
    have any rate, layout and sample format. Not thread-safe.
    """

    def __init__(self, codec: str = "pcmu", *, ptime: float = 0.02, bitrate: int | None = None) -> None:
        try:
            self.info = AUDIO_CODECS[codec]
        except KeyError:
            raise EncoderError(f"unknown audio codec {codec!r}; known: {', '.join(AUDIO_CODECS)}") from None
        self._framer = AudioFramer(self.info.sample_rate, ptime)
        self.samples_per_frame = self._framer.samples_per_frame
        self._ctx: Any = None
        if self.info.ffmpeg is not None:
            try:
                ctx: Any = CodecContext.create(self.info.ffmpeg, "w")
                ctx.sample_rate = self.info.sample_rate
                ctx.format = "s16"
                ctx.layout = "mono"
                ctx.time_base = Fraction(1, self.info.sample_rate)
                if bitrate:
                    ctx.bit_rate = bitrate
                if codec == "opus":
                    ctx.options = {"application": "voip", "frame_duration": str(round(ptime * 1000))}
                ctx.open()
            except Exception as exc:
                raise EncoderError(f"audio encoder {codec!r} failed to open: {exc}") from exc
            self._ctx = ctx
        self._pts = 0

    def encode(self, frame: AudioFrame | None) -> list[bytes]:
        """RTP payloads (one per ``ptime``) for the audio so far; ``None`` flushes."""
        out: list[bytes] = []
        for f in self._framer.push(frame):
            if self._ctx is None:
                pcm = f.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                out.append(g711.ulaw_encode(pcm) if self.info.name == "pcmu" else g711.alaw_encode(pcm))
                continue
            f.pts = self._pts
            f.time_base = Fraction(1, self.info.sample_rate)
            self._pts += f.samples
            try:
                out.extend(bytes(p) for p in self._ctx.encode(f))
            except av.error.FFmpegError as exc:
                raise EncoderError(f"{self.info.name} encoding failed: {exc}") from exc
        return out


class AudioDecoder:
    """Speech decoder: one RTP payload -> mono s16 :class:`AudioFrame` objects. Not thread-safe.

    Corrupt payloads are counted in ``errors`` and yield no frames.
    """

    def __init__(self, codec: str = "pcmu") -> None:
        try:
            self.info = AUDIO_CODECS[codec]
        except KeyError:
            raise DecoderError(f"unknown audio codec {codec!r}; known: {', '.join(AUDIO_CODECS)}") from None
        self._ctx: Any = None
        self._resampler: AudioResampler | None = None
        self.errors = 0
        if self.info.ffmpeg is not None:
            name = "opus" if codec == "opus" else self.info.ffmpeg  # FFmpeg's native Opus decoder
            try:
                ctx: Any = CodecContext.create(name, "r")
                ctx.sample_rate = self.info.sample_rate
                ctx.layout = "mono"
                ctx.open()
            except Exception as exc:
                raise DecoderError(f"audio decoder {codec!r} failed to open: {exc}") from exc
            self._ctx = ctx

    def decode(self, payload: bytes) -> list[AudioFrame]:
        """PCM frames of one payload."""
        if self._ctx is None:
            pcm = g711.ulaw_decode(payload) if self.info.name == "pcmu" else g711.alaw_decode(payload)
            frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 8000
            return [frame]
        try:
            frames: list[AudioFrame] = self._ctx.decode(av.Packet(payload))
        except av.error.FFmpegError as exc:
            self.errors += 1
            _log.info("%s decoding error: %s", self.info.name, exc)
            return []
        out: list[AudioFrame] = []
        for f in frames:
            if f.format.name == "s16" and f.layout.nb_channels == 1:
                out.append(f)
            else:  # FFmpeg's Opus decoder gives float samples
                if self._resampler is None:
                    self._resampler = AudioResampler(format="s16", layout="mono", rate=self.info.sample_rate)
                out.extend(self._resampler.resample(f))
        return out


def pcm_of(frames: list[AudioFrame]) -> np.ndarray:
    """Concatenated samples of mono s16 frames as one int16 array (tests and tools)."""
    if not frames:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16, copy=False)
