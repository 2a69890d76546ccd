"""Helpers to drive external peers (ffmpeg, GStreamer) over UDP on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable


def free_udp_port_pair() -> int:
    """An even UDP port whose successor is also free (RTP + RTCP), on 127.0.0.1."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port % 2 or port > 65000:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(
                socket.AF_INET, socket.SOCK_DGRAM
            ) as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free UDP port pair")


def udp_port_bound(port: int) -> bool:
    """True when some process listens on UDP ``port`` (reads /proc/net/udp)."""
    hexport = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    local = line.split()[1]
                    if local.endswith(hexport):
                        return True
        except OSError:
            continue
    return False


def wait_bound(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if udp_port_bound(port):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"peer exited early: {proc.args!r}")
        time.sleep(0.02)
    raise TimeoutError(f"peer did not bind UDP port {port}")


class UdpCollector:
    """Collects datagrams arriving on a fresh 127.0.0.1 port in a background thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.packets: list[bytes] = []
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.packets.append(data)
            self._last = time.monotonic()

    def wait_idle(self, idle: float = 1.0, timeout: float = 30.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.packets and time.monotonic() - self._last > idle:
                break
            time.sleep(0.05)
        self.close()
        return self.packets

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def send_udp(packets: Iterable[bytes], port: int, gap: float = 0.0005) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for data in packets:
            s.sendto(data, ("127.0.0.1", port))
            if gap:
                time.sleep(gap)


def run(cmd: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)


def stop_gst(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> tuple[bytes, bytes]:
    """Send SIGINT to a ``gst-launch-1.0 -e`` process (EOS, drain) and collect its output."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.communicate()
