"""The media engine on PyAV: sources, codecs, sinks, clock and pipeline threads.

PyAV (FFmpeg) is imported here and only here in vcore. See ``docs/media.md``.

```python
from vcore.media import TestPattern, H264Encoder, H264Decoder
enc = H264Encoder(width=1280, height=720, fps=30, bitrate=1_500_000)
units = enc.encode(frame)          # -> list[AccessUnit] (Annex B)
frames = H264Decoder().decode(units[0])
```
"""

from __future__ import annotations

from .clock import MediaClock, RemoteClock, sync_offset
from .codecs import (
    AUDIO_CODECS,
    AudioDecoder,
    AudioEncoder,
    AudioFramer,
    H264Decoder,
    H264Encoder,
    ProfileLevelId,
    available_h264_encoders,
    max_resolution,
    parse_profile_level_id,
    sps_info,
)
from .errors import (
    DecoderError,
    DeviceError,
    DeviceNotFound,
    EncoderError,
    MediaError,
    PipelineClosed,
    SourceEnded,
)
from .pipeline import (
    CAPTURE_TIME_EXT_ID,
    AudioReceiver,
    AudioSender,
    InOrderAssembler,
    LatencyStats,
    UnitAssembler,
    VideoReceiver,
    VideoSender,
)
from .sinks import CallbackSink, FrameQueue, NullSink, Recorder, Sink, Speaker
from .sources import (
    Camera,
    FileSource,
    Microphone,
    ScreenSource,
    Source,
    TestPattern,
    Tone,
    capture_time,
    find_audio_device,
)

__all__ = [
    "MediaClock",
    "RemoteClock",
    "sync_offset",
    "AUDIO_CODECS",
    "AudioDecoder",
    "AudioEncoder",
    "AudioFramer",
    "H264Decoder",
    "H264Encoder",
    "ProfileLevelId",
    "available_h264_encoders",
    "max_resolution",
    "parse_profile_level_id",
    "sps_info",
    "DecoderError",
    "DeviceError",
    "DeviceNotFound",
    "EncoderError",
    "MediaError",
    "PipelineClosed",
    "SourceEnded",
    "CAPTURE_TIME_EXT_ID",
    "AudioReceiver",
    "AudioSender",
    "InOrderAssembler",
    "LatencyStats",
    "UnitAssembler",
    "VideoReceiver",
    "VideoSender",
    "CallbackSink",
    "FrameQueue",
    "NullSink",
    "Recorder",
    "Sink",
    "Speaker",
    "Camera",
    "FileSource",
    "Microphone",
    "ScreenSource",
    "Source",
    "TestPattern",
    "Tone",
    "capture_time",
    "find_audio_device",
]
