"""G.711 µ-law / A-law: bit-exact with FFmpeg's pcm_mulaw / pcm_alaw, both twins."""

from __future__ import annotations

from types import ModuleType

import av
import numpy as np
import pytest

from vcore import g711

ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def _ffmpeg_encode(codec: str, pcm: np.ndarray) -> bytes:
    ctx = av.CodecContext.create(codec, "w")
    ctx.sample_rate = 8000
    ctx.format = "s16"
    ctx.layout = "mono"
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 8000
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    return b"".join(bytes(p) for p in packets)


def _ffmpeg_decode(codec: str, codes: bytes) -> bytes:
    ctx = av.CodecContext.create(codec, "r")
    ctx.sample_rate = 8000
    ctx.layout = "mono"
    frames = ctx.decode(av.Packet(codes))
    return b"".join(f.to_ndarray().tobytes() for f in frames)


@pytest.mark.parametrize("codec,alaw", [("pcm_mulaw", False), ("pcm_alaw", True)])
def test_encode_bit_exact_with_ffmpeg(fp: ModuleType, codec: str, alaw: bool) -> None:
    ours = fp.g711_encode(ALL_PCM, alaw)
    assert len(ours) == 65536
    assert ours == _ffmpeg_encode(codec, ALL_PCM)


@pytest.mark.parametrize("codec,alaw", [("pcm_mulaw", False), ("pcm_alaw", True)])
def test_decode_bit_exact_with_ffmpeg(fp: ModuleType, codec: str, alaw: bool) -> None:
    assert fp.g711_decode(ALL_CODES, alaw) == _ffmpeg_decode(codec, ALL_CODES)


@pytest.mark.parametrize("alaw", [False, True])
def test_decode_then_encode_is_identity_on_codes(fp: ModuleType, alaw: bool) -> None:
    pcm = np.frombuffer(fp.g711_decode(ALL_CODES, alaw), dtype=np.int16)
    again = fp.g711_encode(pcm, alaw)
    # every code survives except the two zero codes, which both decode to 0 (µ-law 0x7f/0xff)
    diff = [i for i in range(256) if again[i] != ALL_CODES[i]]
    assert diff == ([0x7F] if not alaw else [])


def test_bytes_and_array_inputs_agree(fp: ModuleType) -> None:
    pcm = (np.sin(np.arange(160) / 5) * 20000).astype(np.int16)
    assert fp.g711_encode(pcm.tobytes(), False) == fp.g711_encode(pcm, False)
    assert fp.g711_encode(bytearray(pcm.tobytes()), True) == fp.g711_encode(memoryview(pcm), True)
    strided = np.stack([pcm, pcm], axis=1)[:, 0]  # non-contiguous view
    assert fp.g711_encode(strided, False) == fp.g711_encode(pcm, False)


def test_bad_inputs(fp: ModuleType) -> None:
    with pytest.raises(ValueError, match="int16 PCM needs an even number of bytes, got 3"):
        fp.g711_encode(b"abc", False)
    with pytest.raises(TypeError, match="G.711 encoder needs int16 PCM, got float64"):
        fp.g711_encode(np.zeros(4), False)
    assert fp.g711_encode(b"", False) == b""
    assert fp.g711_decode(b"", True) == b""


def test_public_module() -> None:
    pcm = np.array([0, 1000, -1000, 32767, -32768], dtype=np.int16)
    for enc, dec in ((g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)):
        codes = enc(pcm)
        out = dec(codes)
        assert out.dtype == np.int16 and out.shape == (5,)
        assert np.all(np.abs(out.astype(int) - pcm.astype(int)) <= np.abs(pcm.astype(int)) // 16 + 16)
