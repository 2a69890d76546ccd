"""Real SIP software as test peers, headless on 127.0.0.1: baresip, linphonec, Kamailio and SIPp.

Each peer runs in its own generated configuration folder (under pytest's ``tmp_path``), on ports
chosen free at start, and is stopped (SIGTERM, then SIGKILL) by ``close()`` — use them as context
managers. A missing program skips the test with a message (``.ci/run`` installs the Debian packages
``baresip``, ``linphone-cli``, ``kamailio`` (with ``kamailio-tls-modules``) and ``sip-tester``).

What each one gives a test:

- :class:`Baresip` — a user agent driven through its ``ctrl_tcp`` control socket (JSON in
  netstrings): ``dial``, ``hangup``, events (``CALL_ESTABLISHED``, ``CALL_CLOSED``...); what it hears
  is dumped to WAV files (``sndfile`` module), so a test measures decoded audio; its RTP packet
  counts come from the summary it prints when a call ends.
- :class:`Linphonec` — linphone's console client, driven on a pseudo-terminal (it plays a tone file,
  records what it hears, takes snapshots of received video).
- :class:`Kamailio` — a registrar and proxy with digest authentication (MD5 and SHA-256) against a
  plaintext user table written in its configuration (no database).
- :func:`run_sipp` — one SIPp scenario from ``tests/sipp/``.

And the set-ups the SIP tests share: :func:`tls_baresip` (baresip with a certificate of the test
installation), :func:`registered_baresip` (baresip registered with a Kamailio), :func:`answer_dialled`
(baresip dials, a vcore terminal answers), :func:`tone_terminal` (a vcore station sending a tone and no
video) and :func:`check_baresip_heard` (what baresip received and decoded).
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .call_helpers import T

LOCALHOST = "127.0.0.1"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SIPP_DIR = Path(__file__).parent / "sipp"


def require_program(name: str) -> str:
    """Path of a peer program, or skip the test saying which Debian package brings it."""
    packages = {"baresip": "baresip", "linphonec": "linphone-cli", "kamailio": "kamailio", "sipp": "sip-tester"}
    path = shutil.which(name) or (shutil.which(name, path="/usr/sbin:/usr/local/sbin") if name == "kamailio" else None)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {packages.get(name, name)}; .ci/run installs it)")
    return path


def free_port(*, span: int = 1) -> int:
    """A port free on 127.0.0.1 right now for UDP and TCP, with the ``span - 1`` ports after it free too.

    SIP listens on UDP and TCP at once; baresip puts its TLS listener on the next port (``span=2``).
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((LOCALHOST, 0))
            port = int(s.getsockname()[1])
        if port + span > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for p in range(port, port + span):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    sock = socket.socket(socket.AF_INET, kind)
                    socks.append(sock)
                    sock.bind((LOCALHOST, p))
            return port
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port")


def wait_tcp(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"peer exited early ({proc.returncode}): {proc.args!r}")
        try:
            with socket.create_connection((LOCALHOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on TCP port {port}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; always reaps the process."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _close_pipe(proc: subprocess.Popen[bytes], reader: threading.Thread | None) -> None:
    """Join the thread reading the process's output, then close that pipe."""
    if reader is not None:
        reader.join(5)
    if proc.stdout is not None:
        proc.stdout.close()


def _collect_lines(proc: subprocess.Popen[bytes] | None, output: list[str]) -> None:
    """Append each line ``proc`` prints to ``output`` until it closes its output (a reader thread's loop)."""
    assert proc is not None and proc.stdout is not None
    for raw in proc.stdout:
        output.append(raw.decode("utf-8", "replace").rstrip())


def _wait_line(output: list[str], proc: subprocess.Popen[bytes] | None, pattern: str, timeout: float,
               who: str) -> str:
    """The first line of ``output`` matching ``pattern`` (a regex), waiting up to ``timeout`` seconds while
    ``proc`` runs; else :class:`TimeoutError` naming ``who`` with the tail of the output."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(output):
            if rx.search(line):
                return line
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    raise TimeoutError(f"{who}: no line matches {pattern!r} (tail: {output[-15:]})")


def wav_stats(path: Path) -> tuple[int, float]:
    """(sample rate, seconds of audio whose level is not silence) of a 16-bit WAV recording."""
    import numpy as np

    with wave.open(str(path), "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    if channels > 1:
        samples = samples[:: channels]
    block = rate // 50  # 20 ms
    usable = len(samples) // block * block
    if not usable:
        return rate, 0.0
    levels = np.sqrt((samples[:usable].reshape(-1, block) ** 2).mean(axis=1))
    loud = int((levels > 300).sum())  # about -40 dBFS
    return rate, loud * 0.02


# --------------------------------------------------------------------------------------------- baresip


def _netstring(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data + b","


@dataclass
class BaresipAccount:
    """One ``accounts`` line. ``aor``: ``sip:user@host[:port][;transport=...]``."""

    aor: str
    password: str | None = None
    register: bool = False
    answer: bool = True
    mediaenc: str | None = None  # "srtp-mand", "srtp", "dtls_srtp" or None (plain RTP)
    audio_codecs: str = "opus/48000/2"
    video_codecs: str | None = None
    outbound: str | None = None

    def line(self) -> str:
        params = [f"regint={3600 if self.register else 0}", f"answermode={'auto' if self.answer else 'manual'}",
                  f"audio_codecs={self.audio_codecs}"]
        if self.password is not None:
            params.append(f"auth_pass={self.password}")
        if self.mediaenc:
            params.append(f"mediaenc={self.mediaenc}")
        if self.video_codecs:
            params.append(f"video_codecs={self.video_codecs}")
        if self.outbound:
            params.append(f"outbound=\"{self.outbound}\"")
        return f"<{self.aor}>;" + ";".join(params)


@dataclass
class Baresip:
    """A baresip 1.0 instance on 127.0.0.1, driven through ``ctrl_tcp``.

    ``sip_port``: UDP and TCP (and TLS on ``tls_port`` when ``certificate`` is given: a PEM with the
    certificate and its key, presented to servers and clients alike; ``cafile`` to verify peers).
    ``video``: send a test picture (``fakevideo``) and accept H.264 (baresip offers packetization-mode 0).
    """

    workdir: Path
    account: BaresipAccount | None = None
    video: bool = False
    certificate: Path | None = None
    cafile: Path | None = None
    sip_port: int = 0
    ctrl_port: int = 0
    sip_trace: bool = False  # -s: every SIP message in the log (for debugging a test)
    events: list[dict[str, Any]] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.binary = require_program("baresip")
        self.sip_port = self.sip_port or free_port(span=2)
        self.tls_port = self.sip_port + 1  # baresip's TLS listener: the SIP port + 1
        self.ctrl_port = self.ctrl_port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Condition()
        self._responses: list[dict[str, Any]] = []
        self._threads: list[threading.Thread] = []
        self._token = 0

    @property
    def uri(self) -> str:
        """Where to reach this instance directly (its account name at its UDP/TCP listener)."""
        user = "baresip"
        if self.account is not None:
            user = self.account.aor.split(":", 1)[1].split("@", 1)[0]
        return f"sip:{user}@{LOCALHOST}:{self.sip_port}"

    @property
    def tls_uri(self) -> str:
        """The same user at the TLS listener (needs ``certificate``), as ``sip:...;transport=tls``."""
        return self.uri.rsplit(":", 1)[0] + f":{self.tls_port};transport=tls"

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        modules = ["g711", "g722", "opus", "ausine", "aufile", "srtp", "dtls_srtp", "account",
                   "ctrl_tcp", "menu", "aubridge", "sndfile"]
        if self.video:
            modules += ["avcodec", "fakevideo"]
        lines = [
            "poll_method epoll",
            f"sip_listen {LOCALHOST}:{self.sip_port}",
            "sip_trans_def udp",
            "call_local_timeout 120",
            "call_max_calls 4",
            "audio_source ausine,440",
            "audio_player aubridge,nowhere",  # decoded audio goes nowhere but through sndfile's dump
            "audio_alert aubridge,nowhere",
            f"snd_path {self.workdir}",
            "audio_level no",
            "ausrc_srate 48000",
            "auplay_srate 48000",
            "rtp_tos 0",
            "rtcp_mux no",
            "rtp_stats yes",
            "jitter_buffer_delay 5-10",
            f"net_interface {LOCALHOST}",
            f"ctrl_tcp_listen {LOCALHOST}:{self.ctrl_port}",
            "module_path /usr/lib/baresip/modules",
            *[f"module {m}.so" for m in modules],
        ]
        if self.video:
            lines += ["video_source fakevideo,nil", "video_display fakevideo,nil", "video_size 320x240",
                      "video_bitrate 300000", "video_fps 15"]
        # baresip's configuration values end at white space: copy the PEM files to plain names
        if self.certificate is not None:
            shutil.copyfile(self.certificate, self.workdir / "identity.pem")
            os.chmod(self.workdir / "identity.pem", 0o600)
            lines += [f"sip_certificate {self.workdir / 'identity.pem'}"]
        if self.cafile is not None:
            shutil.copyfile(self.cafile, self.workdir / "ca.pem")
            lines += [f"sip_cafile {self.workdir / 'ca.pem'}"]
        (self.workdir / "config").write_text("\n".join(lines) + "\n")
        account = self.account or BaresipAccount(f"sip:baresip@{LOCALHOST}:{self.sip_port}")
        (self.workdir / "accounts").write_text(account.line() + "\n")
        (self.workdir / "contacts").write_text("")

    def start(self) -> Baresip:
        self._write_config()
        args = [self.binary, "-f", str(self.workdir), "-4"] + (["-s"] if self.sip_trace else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        reader = threading.Thread(target=self._read_output, daemon=True)
        reader.start()
        self._threads.append(reader)
        wait_tcp(self.ctrl_port, self.proc)
        self._sock = socket.create_connection((LOCALHOST, self.ctrl_port))
        ctrl = threading.Thread(target=self._read_ctrl, daemon=True)
        ctrl.start()
        self._threads.append(ctrl)
        return self

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_output(self) -> None:
        _collect_lines(self.proc, self.output)

    def _read_ctrl(self) -> None:
        assert self._sock is not None
        buf = b""
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b":" in buf:
                head, rest = buf.split(b":", 1)
                size = int(head)
                if len(rest) < size + 1:
                    break
                msg = json.loads(rest[:size])
                buf = rest[size + 1:]
                with self._lock:
                    (self.events if msg.get("event") else self._responses).append(msg)
                    self._lock.notify_all()

    def command(self, command: str, params: str = "", timeout: float = 10.0) -> str:
        """Run a baresip command (``dial``, ``hangup``, ``accept``, ...); its response text."""
        assert self._sock is not None, "not started"
        self._token += 1
        token = str(self._token)
        self._sock.sendall(_netstring(json.dumps({"command": command, "params": params, "token": token}).encode()))
        with self._lock:
            ok = self._lock.wait_for(lambda: any(r.get("token") == token for r in self._responses), timeout)
            if not ok:
                raise TimeoutError(f"baresip did not answer {command!r}")
            response = next(r for r in self._responses if r.get("token") == token)
        if not response.get("ok", False):
            raise RuntimeError(f"baresip {command} {params}: {response.get('data')}")
        return str(response.get("data", ""))

    def wait_event(self, kind: str, timeout: float = 15.0) -> dict[str, Any]:
        """The first event of ``kind`` (e.g. ``CALL_ESTABLISHED``), waiting up to ``timeout`` seconds."""
        with self._lock:
            ok = self._lock.wait_for(lambda: any(e.get("type") == kind for e in self.events), timeout)
            if not ok:
                seen = [e.get("type") for e in self.events]
                raise TimeoutError(f"baresip: no {kind} event in {timeout} s (events: {seen}; "
                                   f"log tail: {self.output[-15:]})")
            return next(e for e in self.events if e.get("type") == kind)

    def wait_output(self, pattern: str, timeout: float = 15.0) -> str:
        """The first log line matching ``pattern`` (a regex), waiting up to ``timeout`` seconds.

        For what may happen before the control socket connects (the first REGISTER's answer).
        """
        return _wait_line(self.output, self.proc, pattern, timeout, "baresip")

    def wait_registered(self, timeout: float = 15.0) -> str:
        """Wait for the account's registration to succeed (its ``200 OK ... [N binding]`` line)."""
        return self.wait_output(r"\b200 OK\b.*binding", timeout)

    def has_event(self, kind: str) -> bool:
        with self._lock:
            return any(e.get("type") == kind for e in self.events)

    def rtp_summary(self) -> dict[str, tuple[int, int]]:
        """Per media of the last ended call: (RTP packets sent, RTP packets received), as baresip prints them."""
        summary: dict[str, tuple[int, int]] = {}
        lines = list(self.output)
        for i, line in enumerate(lines):
            m = re.match(r"\s*(audio|video)\s+Transmit:\s+Receive:", line)
            if m and i + 1 < len(lines):
                n = re.match(r"\s*packets:\s+(\d+)\s+(\d+)", lines[i + 1])
                if n:
                    summary[m.group(1)] = (int(n.group(1)), int(n.group(2)))
        return summary

    def heard(self) -> list[Path]:
        """The WAV files of decoded audio (one per call, ``sndfile``'s ``dump-*-dec.wav``)."""
        return sorted(self.workdir.glob("dump-*-dec.wav"))

    def close(self) -> None:
        if self.proc is not None:
            try:
                if self.proc.poll() is None and self._sock is not None:
                    try:
                        self._sock.sendall(_netstring(json.dumps({"command": "quit", "token": "q"}).encode()))
                        self.proc.wait(3)
                    except (OSError, subprocess.TimeoutExpired):
                        pass
            finally:
                stop_process(self.proc)
        if self._sock is not None:
            self._sock.close()
        for t in self._threads:
            t.join(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


def tls_baresip(tmp_path: Path, base: Path, user: str, certificate: str, *, video: bool = False,
                **account: Any) -> Baresip:
    """baresip as ``sip:USER@127.0.0.1`` over TLS, presenting the test installation's certificate
    ``base/CERTIFICATE.pem`` and trusting its CA; SRTP mandatory (SDES) unless ``mediaenc=`` says otherwise.
    ``account``: more :class:`BaresipAccount` fields."""
    account.setdefault("mediaenc", "srtp-mand")
    return Baresip(tmp_path / "baresip", BaresipAccount(f"sip:{user}@{LOCALHOST}", **account), video=video,
                   certificate=base / f"{certificate}.pem", cafile=base / "ca" / "ca.cert.pem")


def registered_baresip(tmp_path: Path, k: Kamailio, user: str, password: str, **account: Any) -> Baresip:
    """baresip registering ``sip:USER@`` Kamailio's domain (digest with ``password``); ``account``: more
    :class:`BaresipAccount` fields."""
    return Baresip(tmp_path / "baresip", BaresipAccount(f"sip:{user}@{k.domain}", password=password, register=True,
                                                        **account))


async def answer_dialled(station: Any, peer: Baresip, uri: str) -> tuple[Any, Any]:
    """``peer`` dials ``uri``; the vcore terminal ``station`` answers the call it is offered, and ``peer``
    sees it established. Returns (the :class:`~vcore.IncomingCall`, the :class:`~vcore.Call`)."""
    peer.command("dial", uri)
    incoming = await asyncio.wait_for(station.incoming().__anext__(), T)
    call = await incoming.answer()
    await asyncio.to_thread(peer.wait_event, "CALL_ESTABLISHED")
    return incoming, call


def check_baresip_heard(b: Baresip, *, video: bool = False) -> dict[str, tuple[int, int]]:
    """baresip received RTP from vcore and decoded audio that is not silence (its packet summary, its dump);
    with ``video``, RTP video too, decoded. Returns the packet summary."""
    summary = b.rtp_summary()
    assert summary.get("audio", (0, 0))[1] >= 50, (summary, b.output[-30:])
    heard = b.heard()
    assert heard, "baresip dumped no decoded audio"
    _, loud = wav_stats(heard[-1])
    assert loud >= 1.0, f"baresip decoded only {loud:.2f} s of audible sound from vcore"
    if video:
        assert summary.get("video", (0, 0))[1] >= 10, summary
        assert any("video: receiving with resolution" in line for line in b.output), "baresip decoded no video"
    return summary


def tone_terminal(name: str, sip: Any, **kw: Any) -> Any:
    """A vcore station on plaintext SIP signalling (allowed explicitly) sending an 8 kHz tone and no video;
    ``sip``: its :class:`~vcore.sip.SipSettings`, ``kw``: more :class:`~vcore.Terminal` arguments."""
    import vcore
    from vcore.media import Tone

    return vcore.Terminal(name, allow_plaintext=True, video=None, audio=lambda: Tone(sample_rate=8000), sip=sip,
                          **kw)


# -------------------------------------------------------------------------------------------- Kamailio

_KAMAILIO_CFG = r"""#!KAMAILIO
# generated by tests/sip_peers.py: a registrar and proxy on 127.0.0.1 with digest authentication
debug=2
log_stderror=yes
memdbg=5
memlog=5
children=1
tcp_children=1
auto_aliases=no
listen=udp:{host}:{port}
listen=tcp:{host}:{port}
alias="{host}:{port}"
{tls_listen}
mpath="{modules}"
{tls_module}
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "kex.so"
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "min_expires", {min_expires})
modparam("auth", "algorithm", "{algorithm}")
modparam("auth", "nonce_expire", 300)
modparam("rr", "enable_full_lr", 1)

request_route {{
    xlog("L_INFO", "request $rm $ru from $si:$sp ($pr)\n");
    $var(asserted) = "";
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (!sanity_check()) {{ xlog("L_WARN", "malformed $rm from $si\n"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ route(RELAY); }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ route(RELAY); }} exit; }}
    t_check_trans();
    if (is_method("REGISTER")) {{
        route(AUTH);
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{ sl_send_reply("200", "OK"); exit; }}
    # the domain's users (From host {host}, whatever the port) must authenticate their calls
    if ($fd == "{host}") {{ route(AUTH); }}
    # RFC 3325: the caller's identity as this server authenticated it; never one a client wrote itself
    remove_hf("P-Asserted-Identity");
    if ($var(asserted) != "") {{ append_hf("P-Asserted-Identity: <sip:$var(asserted)@$fd>\r\n"); }}
    if (uri != myself) {{ sl_send_reply("403", "Not relaying"); exit; }}
    record_route();
    if (!lookup("location")) {{ sl_send_reply("404", "Not registered"); exit; }}
    route(RELAY);
}}

route[RELAY] {{
    if (!t_relay()) {{ sl_reply_error(); }}
    exit;
}}

route[AUTH] {{
    $var(pw) = "";
{users}
    if ($var(pw) == "" || !pv_auth_check("$fd", "$var(pw)", "0", "1")) {{
        xlog("L_INFO", "challenge $rm from $fu (auth user '$au')\n");
        auth_challenge("$fd", "1");
        exit;
    }}
    xlog("L_INFO", "authenticated $au ($rm)\n");
    $var(asserted) = $au;
    consume_credentials();
}}
"""


def issue_server_certificate(ca_dir: Path, name: str, hosts: list[str], path: Path) -> Path:
    """A SIP server's identity PEM (key, certificate, CA) from the installation's CA in ``ca_dir``, naming
    ``hosts`` the way RFC 5922 §7.1 matches a server: IP address or DNS subjectAltName, and a ``sip:`` URI.

    ``vcore pki issue`` makes terminal certificates (aliases, roles); a SIP server is named by its host.
    """
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from vcore import pki

    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key.pem").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.cert.pem").read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
        names.append(x509.UniformResourceIdentifier(f"sip:{host}"))
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki.Identity(key, (cert, ca_cert)).save(path)
    return path


@dataclass
class Kamailio:
    """Kamailio 5.6 as registrar and proxy for domain 127.0.0.1 (UDP and TCP on ``port``; TLS on ``tls_port``
    with ``identity``, which needs Debian's ``kamailio-tls-modules``).

    ``users``: name → password (plaintext, written in the generated configuration: test only).
    REGISTER and INVITEs from the domain's users are challenged (``algorithm`` ``MD5`` or
    ``SHA-256``, qop=auth); INVITEs to a registered user are routed to its contact.
    """

    workdir: Path
    users: dict[str, str]
    algorithm: str = "MD5"
    min_expires: int = 10
    port: int = 0
    identity: Path | None = None  # a PEM with key and certificate: also listen for TLS on tls_port
    cafile: Path | None = None  # verify TLS peers' certificates against this CA (required, both ways)
    tls_port: int = 0
    host: str = LOCALHOST  # the address it listens on (and its domain)
    netns: str | None = None  # run inside this network namespace (``ip netns exec``), e.g. a lab's public host
    output: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.binary = require_program("kamailio")
        self.port = self.port or free_port()
        if self.identity is not None:
            self.tls_port = self.tls_port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def domain(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> Kamailio:
        if any(not re.fullmatch(r"[A-Za-z0-9_.-]+", v) for kv in self.users.items() for v in kv):
            raise ValueError("user names and passwords here are plain tokens")
        self.workdir.mkdir(parents=True, exist_ok=True)
        users = "\n".join(f'    if ($au == "{u}") {{ $var(pw) = "{p}"; }}' for u, p in self.users.items())
        modules = next((d for d in ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules")
                        if Path(d).is_dir()), "/usr/lib/x86_64-linux-gnu/kamailio/modules")
        tls_listen = tls_module = ""
        if self.identity is not None:
            if not Path(modules, "tls.so").is_file():
                pytest.skip("Kamailio's TLS module is not installed (Debian package kamailio-tls-modules)")
            tls_listen = (f"enable_tls=yes\nlisten=tls:{self.host}:{self.tls_port}\n"
                          f"alias=\"{self.host}:{self.tls_port}\"")
            tls_module = f'loadmodule "tls.so"\nmodparam("tls", "config", "{self._tls_config()}")'
        cfg = self.workdir / "kamailio.cfg"
        cfg.write_text(_KAMAILIO_CFG.format(port=self.port, modules=modules, algorithm=self.algorithm,
                                            min_expires=self.min_expires, users=users, tls_listen=tls_listen,
                                            tls_module=tls_module, host=self.host))
        inside = ["ip", "netns", "exec", self.netns] if self.netns is not None else []
        check = subprocess.run([*inside, self.binary, "-c", "-f", str(cfg)], capture_output=True, text=True,
                               timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"kamailio rejects its configuration: {check.stderr[-2000:]}")
        self.proc = subprocess.Popen([*inside, self.binary, "-DD", "-E", "-f", str(cfg), "-Y", str(self.workdir),
                                      "-w", str(self.workdir)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if self.netns is None:
            wait_tcp(self.port, self.proc)
        else:
            self._wait_inside(inside)
        return self

    def _wait_inside(self, inside: list[str], timeout: float = 15.0) -> None:
        """Wait until Kamailio accepts TCP on ``host:port`` inside its namespace."""
        probe = f"import socket; socket.create_connection(({self.host!r}, {self.port}), 0.5).close()"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamailio exited early ({self.proc.returncode}): {self.output[-10:]}")
            if subprocess.run([*inside, sys.executable, "-c", probe], capture_output=True, timeout=10).returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"kamailio does not listen on {self.host}:{self.port} in {self.netns}")

    def _tls_config(self) -> Path:
        """Kamailio's TLS profiles: its identity as server and as client, peers verified against ``cafile``."""
        assert self.identity is not None
        key = self.workdir / "tls-identity.pem"
        shutil.copyfile(self.identity, key)
        os.chmod(key, 0o600)
        verify = "yes" if self.cafile is not None else "no"
        ca = ""
        if self.cafile is not None:
            shutil.copyfile(self.cafile, self.workdir / "tls-ca.pem")
            ca = f"ca_list = {self.workdir / 'tls-ca.pem'}\n"
        profile = (f"method = TLSv1.2+\nverify_certificate = {verify}\nrequire_certificate = {verify}\n"
                   f"private_key = {key}\ncertificate = {key}\n{ca}")
        path = self.workdir / "tls.cfg"
        path.write_text(f"[server:default]\n{profile}\n[client:default]\n{profile}")
        return path

    def _read(self) -> None:
        _collect_lines(self.proc, self.output)

    def log_has(self, text: str) -> int:
        """How many log lines contain ``text``."""
        return sum(text in line for line in list(self.output))

    def __enter__(self) -> Kamailio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            _close_pipe(self.proc, self._reader)


# ------------------------------------------------------------------------------------------- linphonec


def write_tone_wav(path: Path, *, rate: int = 16000, seconds: float = 20.0, frequency: float = 440.0) -> Path:
    """A mono 16-bit sine tone: what a peer that plays a file sends."""
    import numpy as np

    t = np.arange(int(rate * seconds)) / rate
    samples = (0.3 * 32767 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


@dataclass
class Linphonec:
    """linphone's console client (liblinphone 5.1) on 127.0.0.1, driven on a pseudo-terminal.

    It plays a tone file instead of a microphone and records what it hears (``soundcard use files``,
    ``play``, ``record``); ``auto_answer`` answers incoming calls (``-a``). ``media_encryption``:
    ``none``, ``srtp`` (SDES) or ``dtls``; ``mandatory`` refuses calls without it. ``video``: sends its
    static picture (H.264 through OpenH264, or VP8) and decodes what it receives (``snapshot FILE``).
    """

    workdir: Path
    user: str = "linphone"
    auto_answer: bool = True
    media_encryption: str = "none"
    mandatory: bool = False
    video: bool = False
    sip_port: int = 0
    output: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.binary = require_program("linphonec")
        self.sip_port = self.sip_port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self.recording = self.workdir / "heard.wav"
        self._master: int | None = None

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{LOCALHOST}:{self.sip_port}"

    def start(self) -> Linphonec:
        self.workdir.mkdir(parents=True, exist_ok=True)
        audio_port = free_port(span=2)
        video_port = free_port(span=2)
        rc = self.workdir / "linphonerc"
        rc.write_text("\n".join([
            "[sip]", f"sip_port={self.sip_port}", "sip_tcp_port=0", "sip_tls_port=0", "default_proxy=-1",
            "ipv6_migration_done=1", f"contact=sip:{self.user}@{LOCALHOST}:{self.sip_port}",
            "use_ipv6=0", "guess_hostname=0", "register_only_when_network_is_up=0",
            f"media_encryption={self.media_encryption}",
            f"media_encryption_mandatory={1 if self.mandatory else 0}",
            "[rtp]", f"audio_rtp_port={audio_port}", f"video_rtp_port={video_port}",
            "[net]", "firewall_policy=0", "bind_address=127.0.0.1",
            "[sound]", "echocancellation=0",
            "[video]", f"capture={1 if self.video else 0}", f"display={1 if self.video else 0}",
            f"automatically_initiate={1 if self.video else 0}",
            f"automatically_accept={1 if self.video else 0}", "device=StaticImage: Static picture",
            "",
        ]))
        args = [self.binary, "-c", str(rc), "-d", "0"]
        if self.auto_answer:
            args.append("-a")
        if self.video:
            args.append("-V")  # capture and display: the received stream is decoded (snapshot works)
        # linphonec 5.1 starts its SIP stack only when its console is a terminal: give it a pseudo-terminal
        (self.workdir / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        master, slave = pty.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO  # no echo of the commands we type
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        env = {**os.environ, "HOME": str(self.workdir)}  # its call-log database goes in the work folder
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=self.workdir, env=env,
                                     start_new_session=True)
        os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        tone = write_tone_wav(self.workdir / "tone.wav")
        self.send("soundcard use files")
        self.send(f"play {tone}")
        self.send(f"record {self.recording}")
        self.wait_output(r"Using wav files")
        deadline = time.monotonic() + 15
        while not udp_bound(self.sip_port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"linphonec did not start (log: {self.output[-15:]})")
            time.sleep(0.05)
        return self

    def send(self, line: str) -> None:
        """One console command (``call URI``, ``terminate``, ``answer``...)."""
        os.write(self._master, line.encode() + b"\n")

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the terminal's other side closed (linphonec exited)
                break
            if not chunk:
                break
            buf += chunk
            *lines, buf = re.split(rb"\r?\n", buf)
            for raw in lines:
                text = _ANSI.sub("", raw.decode("utf-8", "replace")).replace("linphonec> ", "").strip()
                if text:
                    self.output.append(text)

    def wait_output(self, pattern: str, timeout: float = 15.0) -> str:
        """The first output line matching ``pattern`` (a regex)."""
        return _wait_line(self.output, self.proc, pattern, timeout, "linphonec")

    def __enter__(self) -> Linphonec:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc is not None:
            try:
                if self.proc.poll() is None:
                    self.send("quit")
                    self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            finally:
                stop_process(self.proc)
        if self._reader is not None:
            self._reader.join(5)
        if self._master is not None:
            os.close(self._master)
            self._master = None


def udp_bound(port: int) -> bool:
    """True when some process has UDP ``port`` bound (reads /proc/net/udp)."""
    hexport = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                if any(line.split()[1].endswith(hexport) for line in f):
                    return True
        except OSError:
            continue
    return False


# ------------------------------------------------------------------------------------------------ SIPp


@dataclass
class SippResult:
    """What one SIPp run left: its exit status (0: every call succeeded), final screen and error log."""

    returncode: int
    screen: str
    errors: str
    output: str

    def row(self, label: str, arrow: str = "") -> tuple[int, int]:
        """(messages, retransmissions) of the scenario screen's first row for ``label`` (e.g. ``"180"``,
        ``"INVITE"``); ``arrow`` ``"<"`` or ``">"`` picks the direction as drawn (a UAC's ``<`` and a UAS's
        ``>`` are both what SIPp received)."""
        for line in self.screen.splitlines():
            # a UAC screen shows "INVITE ---------->", a UAS screen "----------> INVITE"
            m = (re.match(r"\s*(?P<label>\S+)\s+(?P<arrow><-+|-+>)\s+(?:[EB]-RTD\d\s+)?(?P<n>\d+)\s+(?P<r>\d+)", line)
                 or re.match(r"\s*(?P<arrow><-+|-+>)\s+(?P<label>\S+)\s+(?P<n>\d+)\s+(?P<r>\d+)", line))
            if m and m["label"] == label and (not arrow or arrow in m["arrow"]):
                return int(m["n"]), int(m["r"])
        raise AssertionError(f"no {label} row in SIPp's screen:\n{self.screen}")

    @property
    def successful(self) -> int:
        m = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", self.screen)
        return int(m.group(1)) if m else 0

    @property
    def failed(self) -> int:
        m = re.search(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", self.screen)
        return int(m.group(1)) if m else 0


def run_sipp(workdir: Path, scenario: str, target: str, *, service: str = "vcore", calls: int = 1,
             rate: float = 10.0, limit: int = 1, transport: str = "u1", timeout: float = 30.0,
             extra: list[str] | None = None, background: bool = False) -> SippResult | subprocess.Popen[bytes]:
    """Run ``tests/sipp/<scenario>.xml`` against ``target`` (``host:port``) on 127.0.0.1.

    ``calls`` in all (``-m``), ``limit`` at once (``-l``), ``rate`` per second (``-r``); ``transport``:
    SIPp's ``-t`` (``u1`` UDP, ``t1`` TCP). ``background``: return the running process (a UAS
    scenario waiting for vcore's call); finish it with :func:`sipp_result`.
    """
    binary = require_program("sipp")
    workdir.mkdir(parents=True, exist_ok=True)
    path = SIPP_DIR / f"{scenario}.xml"
    args = [binary, "-sf", str(path), "-s", service, "-i", LOCALHOST, "-p", str(free_port()),
            "-mi", LOCALHOST, "-mp", str(free_port(span=4)), "-m", str(calls), "-l", str(limit),
            "-r", str(rate), "-t", transport, "-nostdin", "-trace_screen", "-trace_err",
            "-timeout", f"{int(timeout)}s", "-timeout_error", *(extra or [])]
    if target:
        args.append(target)
    proc = subprocess.Popen(args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    if background:
        return proc
    return sipp_result(workdir, scenario, proc, timeout + 30)


def sipp_result(workdir: Path, scenario: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> SippResult:
    """Wait for a SIPp run to end (killing it after ``timeout`` seconds) and collect its files."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    screen = errors = ""
    for f in workdir.glob(f"{scenario}_{proc.pid}_screen.log"):
        screen = f.read_text(errors="replace")
    for f in workdir.glob(f"{scenario}_{proc.pid}_errors.log"):
        errors = f.read_text(errors="replace")
    return SippResult(proc.returncode, screen, errors, out.decode("utf-8", "replace"))


def sipp_listen_port(proc: subprocess.Popen[bytes]) -> int:
    """The ``-p`` port a SIPp process was given."""
    args = [str(a) for a in proc.args]  # type: ignore[union-attr]
    return int(args[args.index("-p") + 1])
