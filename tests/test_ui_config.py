"""The station file's ``[screen]`` section (language, window, auto-answer) for ``vcore kiosk`` / ``vcore agent``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vcore import VcoreError
from vcore.station import load_station_config
from vcore.ui import LANGUAGES
from vcore.ui.cli import agent_parser, kiosk_parser, parse_args

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_screen_section_gives_checked_values(tmp_path: Path) -> None:
    path = _file(tmp_path, '[screen]\nlanguage = "en"\nwindow = "800x600"\nauto_answer = false\n')
    assert load_station_config(path) == {"lang": "en", "window": (800, 600), "auto_answer": False}


def test_every_language_of_the_catalogue_is_accepted(tmp_path: Path) -> None:
    for lang in LANGUAGES:  # the file's check lists the languages itself: it must follow the catalogue
        assert load_station_config(_file(tmp_path, f'[screen]\nlanguage = "{lang}"\n')) == {"lang": lang}


@pytest.mark.parametrize(("text", "message"), [
    ('[screen]\nlanguage = "de"\n', r"\[screen\] language: 'de' is not one of fr, en"),
    ('[screen]\nlanguage = 1\n', r"\[screen\] language: '1' is not one of fr, en"),
    ('[screen]\nwindow = "big"\n', r"\[screen\] window: size 'big' is not WIDTHxHEIGHT"),
    ('[screen]\nwindow = "801x600"\n', r"\[screen\] window: size '801x600': width and height must be even"),
    ('[screen]\nauto_answer = "no"\n', r"\[screen\] auto_answer: 'no' is not true or false"),
    ('[screen]\nfullscreen = true\n', r"\[screen\] fullscreen: unknown key \(known in \[screen\]: language, window, "
                                      r"auto_answer\)"),
    ('screen = "en"\n', r"screen must be a table"),
])
def test_bad_screen_values_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(VcoreError, match=message) as info:
        load_station_config(path)
    assert str(path) in str(info.value)


def test_the_file_fills_the_screen_flags_and_flags_win(tmp_path: Path) -> None:
    path = _file(tmp_path, '[screen]\nlanguage = "en"\nwindow = "800x600"\nauto_answer = false\n')
    args = parse_args(agent_parser(), ["--config", str(path)])
    assert not isinstance(args, int)
    assert (args.lang, args.window, args.auto_answer) == ("en", (800, 600), False)
    args = parse_args(agent_parser(), ["--config", str(path), "--auto-answer", "--window", "640x360"])
    assert not isinstance(args, int)
    assert (args.lang, args.window, args.auto_answer) == ("en", (640, 360), True)
    args = parse_args(agent_parser(), [])
    assert not isinstance(args, int)
    assert (args.lang, args.window, args.auto_answer) == ("fr", None, None)  # None: auto-answer on (the default)
    args = parse_args(agent_parser(), ["--no-auto-answer"])
    assert not isinstance(args, int) and args.auto_answer is False
    kiosk = parse_args(kiosk_parser(), ["--config", str(path)])
    assert not isinstance(kiosk, int)
    assert (kiosk.lang, kiosk.window) == ("en", (800, 600)) and not hasattr(kiosk, "auto_answer")


@pytest.mark.parametrize("command", ["kiosk", "agent"])
def test_bad_screen_section_from_the_command_line(tmp_path: Path, command: str) -> None:
    path = _file(tmp_path, '[screen]\nlanguage = "de"\n')
    proc = subprocess.run([sys.executable, "-m", "vcore", command, "--config", str(path)], capture_output=True,
                          text=True, timeout=60, env=_env())
    assert proc.returncode == 2, proc
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "[screen] language: 'de' is not one of fr, en" in proc.stderr and proc.stdout == ""


def test_bad_window_flag_is_one_error_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "vcore", "kiosk", "--window", "huge"], capture_output=True,
                          text=True, timeout=60, env=_env())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc
    assert proc.stderr.strip().splitlines()[-1] == ("vcore kiosk: error: argument --window: size 'huge' is not "
                                                    "WIDTHxHEIGHT, e.g. 640x480"), proc.stderr  # argparse's line
