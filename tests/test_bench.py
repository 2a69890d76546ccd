"""vcore bench: the quick run, JSON machine facts, --compare, bad encoders and ports, the verdict rule."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from vcore.bench import report as rp
from vcore.bench import workloads as wl
from vcore.bench.cli import MeasurementTimeout, compare, main, plot, run_bench, run_with_timeout, summary


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in ["src", os.environ.get("PYTHONPATH", "")] if p))


@pytest.fixture(scope="module")
def quick_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``vcore bench --quick --json`` in a subprocess (the CI command), with the VISCA emulator."""
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = subprocess.run(
        [sys.executable, "-m", "vcore", "bench", "--quick", "--camera", "emulate", "--json", str(out)],
        capture_output=True, text=True, env=_env(), timeout=120,
    )
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    assert "verdict:" in proc.stdout
    assert "encode 720p30" in proc.stdout  # progress lines as it goes
    with open(out, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def test_quick_run_saves_machine_facts(quick_json: dict[str, Any]) -> None:
    m = quick_json["machine"]
    for key in ("cpu_model", "cores", "memory_bytes", "python", "pyav", "ffmpeg", "encoders", "fast_path"):
        assert key in m, key
    assert m["cores"] >= 1 and "libx264" in m["encoders"]
    assert set(m["encoders_unavailable"]) >= {"h264_nvenc", "h264_qsv"} - set(m["encoders"])
    assert quick_json["schema"] == rp.SCHEMA and quick_json["quick"] is True


def test_quick_run_measures_every_profile_srtp_paths_and_visca(quick_json: dict[str, Any]) -> None:
    profiles = {r["profile"] for r in quick_json["encode"] if r["codec"] == "libx264" and not r["error"]}
    assert profiles == {p.name for p in wl.CALL_PROFILES}
    for r in quick_json["encode"]:
        if not r["error"]:
            assert r["frames"] > 0 and r["cpu_per_second"] > 0 and r["latency_ms_mean"] > 0
    assert set(quick_json["decode"]) == profiles
    s = quick_json["srtp"]
    assert s["vcore_protect_us"] > 0 and s["vcore_unprotect_us"] > 0
    assert s["pylibsrtp_protect_us"] > 0  # pylibsrtp is a test dependency here
    assert quick_json["packet_path"]["receive_us"] > 0 and quick_json["packet_path"]["send_us"] > 0
    v = quick_json["visca"]
    assert v["port"] == "emulate" and v["mean_ms"] >= v["wire_ms"] * 0.9
    verdict = quick_json["verdict"]
    assert verdict["text"]
    if verdict["profile"]:
        assert verdict["headroom"] >= rp.HEADROOM and verdict["agent_calls"] >= 1


def test_compare_two_results(quick_json: dict[str, Any], tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    other = copy.deepcopy(quick_json)
    other["machine"]["cpu_model"] = "Kiosk Celeron N4000"
    other["machine"]["cores"] = 1
    for c in other["calls"]:
        c["share"] *= 2
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(quick_json))
    b.write_text(json.dumps(other))
    assert main(["--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "Kiosk Celeron N4000" in out and quick_json["machine"]["cpu_model"][:30] in out
    assert "720p30" in out and "best profile" in out
    text = compare(quick_json, other)
    assert "SRTP vcore_protect" in text


def test_compare_refuses_other_files(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    assert main(["--compare", str(bad), str(bad)]) == 2
    assert main(["--compare", str(tmp_path / "missing.json"), str(bad)]) == 2
    assert "not a vcore bench result" in capsys.readouterr().err


def test_failing_encoder_is_reported_not_crashed() -> None:
    lines: list[str] = []
    res = run_bench(True, encoders=["h264_nosuch", "libx264"], profiles=["360p15"], progress=lines.append)
    rows = {r["codec"]: r for r in res["encode"]}
    assert rows["h264_nosuch"]["error"].startswith("not available:")
    assert rows["libx264"]["error"] is None
    assert any("not available" in line for line in lines)
    assert res["verdict"]["profile"] == "360p15"  # libx264 still gives a verdict
    assert "h264_nosuch" in summary(res)


def test_no_usable_encoder_and_a_missing_camera(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--quick", "--encoders", "h264_nosuch", "--profiles", "360p15", "--camera", "/dev/vcore-no-such-tty"])
    assert code == 3  # measured, nothing sustainable (1 would be a crash)
    out = capsys.readouterr().out
    assert "not available" in out
    assert "not measured: VISCA round trip (/dev/vcore-no-such-tty)" in out
    assert "no call profile is sustainable" in out


def test_unknown_profile_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profiles", "4k60"]) == 2
    assert "unknown call profile" in capsys.readouterr().err


def test_plot_without_matplotlib_says_so(quick_json: dict[str, Any], tmp_path: Any) -> None:
    path = str(tmp_path / "bench.png")
    why = plot([("here", quick_json)], path)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert why is not None and "matplotlib" in why
    else:
        assert why is None and os.path.getsize(path) > 0


def test_measurement_timeout_does_not_hang() -> None:
    with pytest.raises(MeasurementTimeout):
        run_with_timeout(lambda: time.sleep(5), 0.05)
    assert run_with_timeout(lambda: 42, 5) == 42
    with pytest.raises(ZeroDivisionError):
        run_with_timeout(lambda: 1 / 0, 5)


# -- the verdict rule --------------------------------------------------------------


def cost(profile: str, cpu: float, cores: int = 2, realtime: bool = True, codec: str = "libx264",
         error: str | None = None) -> rp.CallCost:
    return rp.CallCost(profile, codec, "ultrafast", realtime, encode=cpu * 0.8, decode=cpu * 0.2, packets=0.0,
                       cores=cores, error=error)


def test_share_and_agent_calls() -> None:
    c = cost("720p30", 0.35, cores=2)
    assert c.cpu_per_second == pytest.approx(0.35)
    assert c.share == pytest.approx(0.175)
    assert c.sustainable
    assert c.agent_calls == 4  # floor(0.7 * 2 / 0.35)
    assert cost("720p30", 1.4, cores=2).sustainable  # exactly 30 % headroom
    assert not cost("720p30", 1.5, cores=2).sustainable
    assert cost("720p30", 1.5, cores=2).agent_calls == 0
    assert not cost("720p30", 0.1, realtime=False).sustainable
    assert cost("720p30", 0.1, realtime=False).agent_calls == 0


def test_verdict_picks_the_largest_sustainable_profile_and_cheapest_encoder() -> None:
    costs = [cost("480p30", 0.2), cost("720p30", 0.6), cost("720p30", 0.3, codec="h264_vaapi"),
             cost("1080p30", 1.6), cost("1080p15", 0.9, realtime=False)]
    v = rp.verdict(costs)
    assert (v.profile, v.codec) == ("720p30", "h264_vaapi")
    assert v.share == pytest.approx(0.15) and v.headroom == pytest.approx(0.85)
    assert v.agent_calls == 4 and v.agent_calls_profile == "720p30"
    assert "720p30" in v.text and "not real time" in " ".join(v.reasons)


def test_verdict_when_nothing_is_sustainable() -> None:
    v = rp.verdict([cost("360p15", 2.0), cost("720p30", 0.1, error="not available: no device")])
    assert v.profile is None and v.agent_calls == 0
    assert "no call profile" in v.text
    assert any("no device" in r for r in v.reasons)


def test_call_cost_adds_decode_and_packet_paths() -> None:
    enc = wl.EncodeResult("libx264", "ultrafast", "720p30", frames=30, cpu_per_frame=0.004, realtime=True)
    c = rp.call_cost(enc, 0.001, 3e-6, 3e-6, cores=4)
    assert c.encode == pytest.approx(0.12) and c.decode == pytest.approx(0.03)
    pps = 1_500_000 / 8 / rp.PAYLOAD_PER_PACKET + rp.AUDIO_PACKETS_PER_SECOND
    assert c.packets == pytest.approx(pps * 6e-6)
    assert rp.call_cost(enc, None, 0, 0, 4).error == "decode not measured"


def test_workloads_are_repeatable() -> None:
    """prepare() gives each run fresh receiver state (SRTP replay windows would refuse a second pass)."""
    for impl in ("vcore", "vcore-py"):
        w = wl.srtp_workload(impl, "AES_CM_128_HMAC_SHA1_80", "unprotect", wl.rtp_packets(64))
        for _ in range(2):
            assert w.prepare is not None
            w.prepare()
            assert w.run() == 64
    cpu, wall = wl.per_item(w, rounds=2)
    assert cpu > 0 and wall > 0
