"""H.264 encoder/decoder and speech codecs of vcore.media (PyAV)."""

from __future__ import annotations

import random

import av
import numpy as np
import pytest
from av.audio.frame import AudioFrame
from av.video.frame import PictureType
from .media_helpers import nal_types, noise_frames

from vcore.errors import MediaError
from vcore.media import (
    AudioDecoder,
    AudioEncoder,
    AudioFramer,
    DecoderError,
    EncoderError,
    H264Decoder,
    H264Encoder,
    available_h264_encoders,
    max_resolution,
    parse_profile_level_id,
    sps_info,
)
from vcore.media.clock import MediaClock
from vcore.payload.h264 import AccessUnit, H264Depacketizer, H264Packetizer

W, H = 320, 240


def encode_all(enc: H264Encoder, frames: list, keyframe_at: int | None = None) -> list[AccessUnit]:
    units = []
    for i, f in enumerate(frames):
        if i == keyframe_at:
            enc.request_keyframe()
        units.extend(enc.encode(f))
    return units


@pytest.fixture(scope="module")
def frames() -> list:
    return noise_frames(60, W, H)


# ---------------------------------------------------------------- encoder


def test_encoder_is_constrained_baseline_with_inband_parameter_sets(frames: list) -> None:
    enc = H264Encoder(W, H, 30, 500_000, codec="libx264", idr_interval=1.0)
    units = encode_all(enc, frames)
    assert len(units) == len(frames)
    info = sps_info(units[0].data)
    assert info is not None
    assert info["profile_idc"] == 66  # baseline
    assert info["constraint_flags"] & 0x40  # constraint_set1: constrained baseline
    # periodic IDR every second (30 frames), each with SPS and PPS in front
    keys = [i for i, u in enumerate(units) if u.keyframe]
    assert keys == [0, 30]
    for i in keys:
        types = nal_types(units[i].data)
        assert types[:2] == [7, 8] and 5 in types
    assert all(5 not in nal_types(u.data) for i, u in enumerate(units) if i not in keys)


def test_encoder_has_no_b_frames_and_timestamps_follow_capture_time(frames: list) -> None:
    clock = MediaClock(90000, rtp_offset=1000)
    enc = H264Encoder(W, H, 30, 500_000, codec="libx264", clock=clock)
    units = encode_all(enc, frames[:20])
    # one unit per frame, in capture order: nothing was reordered or delayed
    assert [u.timestamp for u in units] == [clock.rtp_timestamp(f.time) for f in frames[:20]]
    dec = H264Decoder()
    types = [int(f.pict_type) for u in units for f in dec.decode(u)]
    assert types[0] == PictureType.I and set(types[1:]) == {PictureType.P}
    # the caller's frames keep their capture stamps
    assert frames[0].time == pytest.approx(1.0)


def test_keyframe_on_request(frames: list) -> None:
    enc = H264Encoder(W, H, 30, 500_000, codec="libx264", idr_interval=100)
    units = encode_all(enc, frames[:30], keyframe_at=17)
    assert [i for i, u in enumerate(units) if u.keyframe] == [0, 17]
    assert nal_types(units[17].data)[:2] == [7, 8]
    assert enc.keyframes_out == 2


def test_bitrate_change_at_run_time(frames: list) -> None:
    enc = H264Encoder(W, H, 30, 1_000_000, codec="libx264", idr_interval=100)
    first = encode_all(enc, frames[:30])
    enc.bitrate = 200_000
    second = encode_all(enc, frames[30:60])
    size1 = sum(len(u.data) for u in first[10:])
    size2 = sum(len(u.data) for u in second[10:])
    assert size2 < size1 / 2
    assert enc.bitrate == 200_000
    # going above the rate the encoder was opened with reopens it: the next picture is an IDR
    enc.bitrate = 2_000_000
    third = enc.encode(frames[0], capture_time=10.0)
    assert third and third[0].keyframe


def test_frame_rate_change_drops_frames_evenly(frames: list) -> None:
    enc = H264Encoder(W, H, 30, 500_000, codec="libx264")
    enc.fps = 15
    units = encode_all(enc, frames[:30])
    assert len(units) == 15
    assert enc.frames_dropped == 15
    enc.fps = 30
    assert len(encode_all(enc, frames[30:40])) == 10


def test_resolution_from_profile_level_id() -> None:
    pli = parse_profile_level_id("42e01f")
    assert (pli.profile_idc, pli.level_idc, pli.constrained_baseline) == (66, 31, True)
    assert max_resolution(31, 30) == (1280, 720)
    assert max_resolution(30, 30) == (640, 480)  # 3.0: 1620 MBs max, 40500 MB/s
    assert max_resolution(13, 30) == (352, 288)  # CIF
    assert max_resolution(40, 30) == (1920, 1080)
    assert max_resolution(10, 15) == (176, 144)  # QCIF
    enc = H264Encoder(profile_level_id="42e00d", fps=30, codec="libx264")
    assert (enc.width, enc.height) == (352, 288)
    unit = enc.encode(noise_frames(1, 352, 288)[0])[0]
    info = sps_info(unit.data)
    assert info is not None and info["level_idc"] == 13
    with pytest.raises(ValueError, match="profile-level-id"):
        parse_profile_level_id("42e0")
    with pytest.raises(ValueError, match="Table A-1"):
        parse_profile_level_id("42e0ff")


def test_slice_max_size_for_mode0(frames: list) -> None:
    enc = H264Encoder(W, H, 30, 1_000_000, codec="libx264", max_slice_size=1100)
    units = encode_all(enc, frames[:5])
    packets = [p for u in units for p in H264Packetizer(mtu=1200, mode=0).packetize(u.data, u.timestamp)]
    assert all(len(p.serialize()) <= 1200 for p in packets)
    assert nal_types(units[0].data).count(5) > 1


def test_input_frames_are_scaled_to_the_encoder_size() -> None:
    enc = H264Encoder(160, 120, 30, 200_000, codec="libx264")
    unit = enc.encode(noise_frames(1, 320, 240)[0])[0]
    (frame,) = H264Decoder().decode(unit)
    assert (frame.width, frame.height) == (160, 120)


def test_encoder_that_fails_to_open_raises_encoder_error() -> None:
    with pytest.raises(EncoderError, match="not available"):
        H264Encoder(W, H, codec="no_such_encoder")
    with pytest.raises(EncoderError, match="even"):
        H264Encoder(321, 240, codec="libx264")
    # hardware encoders that are listed but have no device fail to open: a clear error, no crash
    with pytest.raises(EncoderError):
        H264Encoder(W, H, codec="h264_nvenc")
    assert issubclass(EncoderError, MediaError)


def test_auto_choice_probes_once_and_falls_back_to_libx264() -> None:
    found = available_h264_encoders()
    assert found[-1] == "libx264"
    assert available_h264_encoders() == found
    enc = H264Encoder(W, H, codec="auto")
    assert enc.codec_name in found


# ---------------------------------------------------------------- decoder


@pytest.fixture(scope="module")
def stream(frames: list) -> list[AccessUnit]:
    enc = H264Encoder(W, H, 30, 500_000, codec="libx264", idr_interval=1.0)
    return encode_all(enc, frames)  # IDR at 0 and 30


def test_decoder_clean_stream(stream: list[AccessUnit]) -> None:
    dec = H264Decoder()
    out = [f for u in stream for f in dec.decode(u)]
    assert len(out) == len(stream) and dec.errors == 0
    assert out[5].pts == stream[5].timestamp
    assert not dec.keyframe_needed


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_decoder_survives_corrupt_data_and_resumes_at_next_idr(stream: list[AccessUnit], damage: str) -> None:
    rnd = random.Random(7)
    dec = H264Decoder()
    decoded = []
    for i, u in enumerate(stream):
        data = u.data
        if i == 10:
            if damage == "flip":
                b = bytearray(data)
                for _ in range(40):
                    b[rnd.randrange(8, len(b))] ^= 0xFF
                data = bytes(b)
            elif damage == "truncate":
                data = data[: len(data) // 3]
            else:
                data = b"\x00\x00\x00\x01" + rnd.randbytes(500)
        frames = dec.decode(data)  # raw bytes: the decoder finds keyframes itself
        decoded.extend((i, f) for f in frames)
        if i == 20:
            assert dec.keyframe_needed and dec.errors >= 1 and dec.last_error
    idx = [i for i, _ in decoded]
    assert idx[:10] == list(range(10))
    assert not any(12 <= i < 30 for i in idx)  # nothing shown between the damage and the next IDR
    assert idx[-30:] == list(range(30, 60))  # resumed at the IDR
    assert not dec.keyframe_needed


def test_decoder_incomplete_unit_and_mid_stream_join(stream: list[AccessUnit]) -> None:
    dec = H264Decoder()
    # joining mid-stream: P pictures are skipped until the IDR, and a keyframe is asked for
    assert dec.decode(stream[3]) == []
    assert dec.keyframe_needed and dec.skipped == 1
    assert len(dec.decode(stream[30])) == 1
    assert not dec.keyframe_needed
    broken = AccessUnit(stream[31].data[:100], stream[31].timestamp, False, False)
    assert dec.decode(broken) == []
    assert dec.errors == 1 and dec.keyframe_needed
    assert dec.decode(stream[32]) == []


def test_decoder_through_rtp_with_packet_loss(stream: list[AccessUnit]) -> None:
    pk = H264Packetizer(mtu=600, ssrc=1, sequence_number=65500)
    per_unit = [pk.packetize(u.data, u.timestamp) for u in stream]
    packets = [p for ps in per_unit for p in ps]
    lost = {sum(len(ps) for ps in per_unit[:15])}  # the first packet of picture 15
    dep, dec = H264Depacketizer(), H264Decoder()
    frames = []
    for n, p in enumerate(packets):
        if n in lost:
            continue
        for unit in dep.push(p):
            frames.extend(dec.decode(unit))
    assert dec.errors == 1
    assert len(frames) == 15 + 30  # 0-14, then from the IDR at 30


def test_decoder_open_failure() -> None:
    with pytest.raises(DecoderError):
        H264Decoder(codec="no_such_decoder")


# ---------------------------------------------------------------- audio


def tone(rate: int, seconds: float, freq: float = 440.0) -> AudioFrame:
    t = np.arange(int(rate * seconds)) / rate
    pcm = (np.sin(2 * np.pi * freq * t) * 12000).astype(np.int16)
    f = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    f.sample_rate = rate
    return f


def pcm(frames: list[AudioFrame]) -> np.ndarray:
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16)


def test_g711_kernels_match_pyav_pcm_mulaw_and_alaw(twin: object) -> None:
    fp = twin("_fastpath")  # type: ignore[operator]
    samples = np.arange(-32768, 32768, 7, dtype=np.int16)
    for name, alaw in (("pcm_mulaw", False), ("pcm_alaw", True)):
        ctx = av.CodecContext.create(name, "w")
        ctx.sample_rate, ctx.format, ctx.layout = 8000, "s16", "mono"  # type: ignore[attr-defined]
        ctx.open()
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 8000
        ref = b"".join(bytes(p) for p in ctx.encode(frame))  # type: ignore[attr-defined]
        assert fp.g711_encode(samples, alaw) == ref


@pytest.mark.parametrize("codec,rate", [("pcmu", 8000), ("pcma", 8000), ("g722", 16000), ("opus", 48000)])
def test_speech_round_trip_with_20ms_framing(codec: str, rate: int) -> None:
    enc = AudioEncoder(codec)
    assert enc.info.sample_rate == rate
    payloads = enc.encode(tone(48000, 0.5))  # resampled from 48 kHz
    assert 24 <= len(payloads) <= 25  # 20 ms each (the resampler keeps a few samples back)
    if codec in ("pcmu", "pcma"):
        assert {len(p) for p in payloads} == {160}
    if codec == "g722":
        assert {len(p) for p in payloads} == {160}  # 64 kbit/s
    dec = AudioDecoder(codec)
    out = pcm([f for p in payloads for f in dec.decode(p)])
    assert len(out) >= 0.45 * rate
    ref = pcm([tone(rate, 0.5)])
    # the tone survives: same dominant frequency (440 Hz) in the second half
    seg = out[len(out) // 2 :].astype(float)
    spectrum = np.abs(np.fft.rfft(seg))
    peak = np.argmax(spectrum) * rate / len(seg)
    assert abs(peak - 440) < 20
    assert np.abs(seg).max() > 0.5 * np.abs(ref).max()


def test_audio_framer_resamples_and_cuts_20ms() -> None:
    framer = AudioFramer(16000)
    out = framer.push(tone(44100, 0.25))
    assert all(f.samples == 320 and f.sample_rate == 16000 for f in out)
    assert 11 <= len(out) <= 13


def test_unknown_audio_codec() -> None:
    with pytest.raises(EncoderError, match="unknown audio codec"):
        AudioEncoder("amr")
    with pytest.raises(DecoderError, match="unknown audio codec"):
        AudioDecoder("amr")


def test_audio_decoder_survives_garbage() -> None:
    dec = AudioDecoder("opus")
    dec.decode(b"\xff" * 3)  # must not raise
    assert isinstance(dec.errors, int)


def test_g711_decode_gives_8khz_frames() -> None:
    (frame,) = AudioDecoder("pcmu").decode(bytes(range(160)))
    assert frame.samples == 160 and frame.sample_rate == 8000


def test_parameter_sets_from_avcc_extradata_for_encoders_that_keep_them_out_of_band() -> None:
    from vcore.media.codecs import _parameter_sets_of

    sps, pps = b"\x67\x42\xc0\x1e\xda", b"\x68\xce\x3c\x80"
    avcc = bytes([1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1]) + len(sps).to_bytes(2, "big") + sps
    avcc += bytes([1]) + len(pps).to_bytes(2, "big") + pps
    assert _parameter_sets_of(avcc) == b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps
    annexb = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps
    assert _parameter_sets_of(annexb) == b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps
    assert _parameter_sets_of(b"") == b"" and _parameter_sets_of(b"\x01\x42") == b""
