"""Hosts as Linux network namespaces for the two-site tests: veth links, routers, NAT, a rate limit.

Documentation addresses only (RFC 5737: 192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24; RFC 3849: 2001:db8::/32). Every namespace, and with it every
veth and nft table inside it, is deleted when the lab closes, and every
process the lab started is killed first, whatever happened. Needs root and
iproute2 (``nft`` for NAT); :func:`lab_or_skip` skips with a message where
namespaces cannot be made.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

_counter = itertools.count()


def _sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=30)


def namespaces_unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    name = f"vcprobe{os.getpid()}"
    r = _sh("ip", "netns", "add", name, check=False)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    _sh("ip", "netns", "del", name, check=False)
    return None


class Lab:
    """A set of namespaces ("hosts") joined by veth pairs; use as a context manager."""

    def __init__(self) -> None:
        self.prefix = f"vc{os.getpid() % 10000}x{next(_counter)}"
        self.hosts: list[str] = []
        self.procs: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        for h in self.hosts:
            _sh("ip", "netns", "del", self.ns(h), check=False)
        self.hosts.clear()

    def ns(self, host: str) -> str:
        return f"{self.prefix}{host}"

    def host(self, name: str, *, forward: bool = False) -> str:
        ns = self.ns(name)
        _sh("ip", "netns", "add", ns)
        self.hosts.append(name)
        self.exec(name, "ip", "link", "set", "lo", "up")
        if forward:
            self.exec(name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self.exec(name, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        return name

    def exec(self, host: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = _sh("ip", "netns", "exec", self.ns(host), *cmd, check=False)
        if check and r.returncode != 0:
            raise RuntimeError(f"{host}: {' '.join(cmd)} failed: {r.stderr.strip()}")
        return r

    def link(self, a: str, a_if: str, a_addr: str, b: str, b_if: str, b_addr: str) -> None:
        """A veth pair between hosts ``a`` and ``b`` with one address (CIDR) at each end."""
        tmp_a, tmp_b = f"{self.prefix}{a_if}"[:15], f"{self.prefix}{b_if}p"[:15]
        _sh("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        for tmp, host, ifname, addr in ((tmp_a, a, a_if, a_addr), (tmp_b, b, b_if, b_addr)):
            _sh("ip", "link", "set", tmp, "netns", self.ns(host))
            self.exec(host, "ip", "link", "set", tmp, "name", ifname)
            family = ["-6"] if ":" in addr else []
            extra = ["nodad"] if ":" in addr else []
            self.exec(host, "ip", *family, "addr", "add", addr, "dev", ifname, *extra)
            self.exec(host, "ip", "link", "set", ifname, "up")

    def route(self, host: str, dest: str, via: str) -> None:
        family = ["-6"] if ":" in via else []
        self.exec(host, "ip", *family, "route", "add", dest, "via", via)

    def nft(self, host: str, script: str) -> None:
        if shutil.which("nft") is None:
            pytest.skip("nftables (nft) is not installed (.ci/run installs it)")
        r = subprocess.run(["ip", "netns", "exec", self.ns(host), "nft", "-f", "-"], input=script,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"nft on {host} failed: {r.stderr.strip()}\n{script}")

    def nat_router(self, host: str, *, lan: str, wan: str, forwards: Sequence[str] = ()) -> None:
        """An ADSL box: masquerade LAN -> WAN, a stateful firewall, optional port forwards (static NAT).

        ``forwards``: nft DNAT rules for the WAN side, e.g. ``"tcp dport 1300 dnat to 192.0.2.10"``.
        Nothing from the WAN reaches the LAN unless it answers a LAN flow or is forwarded.
        """
        pre = "\n".join(f"        iifname \"{wan}\" {rule}" for rule in forwards)
        self.nft(host, f"""
table ip vcorelab {{
    chain natpre {{
        type nat hook prerouting priority dstnat;
{pre}
    }}
    chain natpost {{
        type nat hook postrouting priority srcnat;
        oifname "{wan}" masquerade
    }}
    chain forwarding {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        ct status dnat accept
        iifname "{lan}" oifname "{wan}" accept
    }}
}}
""")

    def rate_limit(self, host: str, ifname: str, rate: str, *, burst: str = "16kbit", latency: str = "300ms") -> None:
        """Token bucket on ``ifname``'s egress: an ADSL uplink with a real kernel queue."""
        self.exec(host, "tc", "qdisc", "add", "dev", ifname, "root", "tbf", "rate", rate, "burst", burst,
                  "latency", latency)

    def spawn(self, host: str, argv: Sequence[str], *, log: Path, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[str]:
        """Start ``argv`` inside ``host`` (its own process group), output to ``log``."""
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env["PYTHONUNBUFFERED"] = "1"
        out = open(log, "w")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(host), *argv], stdout=out, stderr=subprocess.STDOUT,
                             text=True, env=full_env, cwd=cwd, start_new_session=True)
        out.close()
        self.procs.append(p)
        return p


def vcore_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vcore", *args]


def wait_for_text(path: Path, text: str, timeout: float, proc: subprocess.Popen[str] | None = None) -> str:
    """Wait until ``text`` appears in the file (or the process exits); the file's content."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    content = path.read_text() if path.exists() else ""
    raise AssertionError(f"{text!r} not seen in {path.name} within {timeout} s:\n{content[-3000:]}")


def kiosk_behind_adsl_box(lab: Lab) -> None:
    """kiosk 192.0.2.2 -- box (masquerade, stateful firewall) 203.0.113.1 -- agent 203.0.113.2."""
    lab.host("kiosk")
    lab.host("box", forward=True)
    lab.host("agent")
    lab.link("kiosk", "eth0", "192.0.2.2/24", "box", "lan", "192.0.2.1/24")
    lab.link("box", "wan", "203.0.113.1/24", "agent", "eth0", "203.0.113.2/24")
    lab.route("kiosk", "default", "192.0.2.1")
    lab.route("agent", "default", "203.0.113.1")  # even so, the box's firewall drops what it did not NAT
    lab.nat_router("box", lan="lan", wan="wan")


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Hosts as network namespaces, all deleted after the test (skipped where they cannot be made)."""
    with lab_or_skip() as made:
        yield made


def lab_or_skip() -> Lab:
    why = namespaces_unavailable()
    if why is not None:
        pytest.skip(why)
    return Lab()


def summary(log_text: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The ``summary:`` lines of ``vcore call``/``answer`` -> {(stream, direction): {frames, packets, ...}}."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for line in log_text.splitlines():
        if not line.startswith("summary: "):
            continue
        parts = line.split()
        stream, direction, codec = parts[1], parts[2], parts[3]
        fields: dict[str, Any] = {"codec": codec, "suite": parts[-1].strip("[]")}
        for p in parts[4:-1]:
            k, _, v = p.partition("=")
            fields[k] = int(v) if v.lstrip("-").isdigit() else v
        out[(stream, direction)] = fields
    return out
