"""vcore's SIP user agent under SIPp (Debian ``sip-tester``): UDP retransmissions, CANCEL, malformed
requests and 200 calls in a row, over UDP on 127.0.0.1 (plaintext signalling allowed explicitly).

The scenarios are in ``tests/sipp/``; each test skips when ``sipp`` is missing.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import vcore
from vcore.h323.messages import G722, OPUS, PCMA, PCMU
from vcore.sip import SipSettings

from .call_helpers import T, run, until, wait_for
from .sip_peers import LOCALHOST, SippResult, require_program, run_sipp, sipp_listen_port, sipp_result

pytestmark = pytest.mark.interop

AUDIO = (OPUS, G722, PCMU, PCMA)


def _agent(**kw: Any) -> vcore.Terminal:
    """An agent station speaking SIP over UDP (plaintext, allowed explicitly), audio only."""
    from vcore.media import Tone

    opts: dict[str, Any] = {"allow_plaintext": True, "sip": SipSettings(transport="udp"),
                            "audio": lambda: Tone(sample_rate=8000), "video": None, "formats": AUDIO}
    opts.update(kw)
    return vcore.Terminal("CAF agent", **opts)


async def _sipp(tmp: Path, scenario: str, t: vcore.Terminal, **kw: Any) -> SippResult:
    result = await asyncio.to_thread(run_sipp, tmp, scenario, f"{LOCALHOST}:{t.sip_port}", **kw)
    assert isinstance(result, SippResult)
    return result


def _ok(result: SippResult) -> None:
    assert result.returncode == 0, f"SIPp exit {result.returncode}\n{result.errors[-3000:]}\n{result.screen[-3000:]}"


class _Answerer:
    """Answers (or only rings) every incoming call of a terminal, in a task it owns."""

    def __init__(self, t: vcore.Terminal, *, answer: bool = True, delay: float = 0.0) -> None:
        self.t, self.answer, self.delay = t, answer, delay
        self.offered: list[Any] = []
        self.calls: list[Any] = []
        self.failures: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async for incoming in self.t.incoming():
            self.offered.append(incoming)
            await incoming.ring()
            if not self.answer:
                continue
            if self.delay:
                await asyncio.sleep(self.delay)
            try:
                self.calls.append(await incoming.answer())
            except vcore.VcoreError as exc:  # the caller may be gone (CANCEL race): say so, carry on
                self.failures.append(str(exc))

    async def __aenter__(self) -> _Answerer:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


def test_retransmitted_invite_makes_one_call(tmp_path: Path) -> None:
    """The INVITE again after the 180: the 180 is resent, one call only; ACK held back: the 200 is resent."""
    require_program("sipp")

    async def scenario() -> None:
        async with _agent() as agent, _Answerer(agent, delay=0.5) as answerer:
            result = await _sipp(tmp_path, "uac_invite_retransmit", agent)
            _ok(result)
            assert len(answerer.offered) == 1 and len(answerer.calls) == 1, (answerer.offered, answerer.failures)
            assert result.row("180", "<")[1] >= 1, "the retransmitted INVITE did not get its 180 again"
            assert result.row("200", "<")[1] >= 1, "no 200 OK retransmission while the ACK was held back"
            call = answerer.calls[0]
            await until(call, "ended")
            assert call.ended.by_peer, call.ended

    run(scenario())


def test_vcore_retransmits_invite_over_udp(tmp_path: Path) -> None:
    """A callee silent for 2.2 s: vcore resends its INVITE (Timer A), then the call works and vcore hangs up."""
    require_program("sipp")

    async def scenario() -> None:
        async with _agent() as kiosk:
            proc = run_sipp(tmp_path, "uas_delayed", "", background=True, timeout=20)
            assert not isinstance(proc, SippResult)
            try:
                port = sipp_listen_port(proc)
                await asyncio.sleep(0.3)  # SIPp binds its port
                call = await kiosk.call(f"sip:sipp@{LOCALHOST}:{port}")
                await asyncio.wait_for(call.connected, T)
                await asyncio.sleep(0.3)
                await call.hangup()
            finally:
                result = await asyncio.to_thread(sipp_result, tmp_path, "uas_delayed", proc, 30)
            _ok(result)
            received, retrans = result.row("INVITE", ">")  # drawn "----------> INVITE" on a UAS screen
            assert received == 1 and retrans >= 2, result.screen

    run(scenario())


def test_cancel_while_ringing(tmp_path: Path) -> None:
    """CANCEL after the 180: 200 for the CANCEL, 487 for the INVITE; the offered call is gone."""
    require_program("sipp")

    async def scenario() -> None:
        async with _agent() as agent, _Answerer(agent, answer=False) as answerer:
            _ok(await _sipp(tmp_path, "uac_cancel", agent))
            assert len(answerer.offered) == 1
            await wait_for(lambda: answerer.offered[0].gone)
            assert agent.calls == []

    run(scenario())


class _RawUac:
    """A bare SIP caller on a UDP socket, for the CANCEL race SIPp cannot script: it cannot tell a 200
    to the CANCEL from a 200 to the INVITE (same branch), and it ignores a 200 that lands while it sends."""

    def __init__(self, port: int, n: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCALHOST, 0))
        self.local = self.sock.getsockname()[1]
        self.call_id = f"race-{n}-{self.local}@127.0.0.1"
        self.branch = f"z9hG4bK-race-{n}-{self.local}"

    def close(self) -> None:
        self.sock.close()

    def send(self, method: str, cseq: int, *, branch: str | None = None, to_tag: str = "", body: str = "") -> None:
        to = f"<sip:caf-agent@{LOCALHOST}:{self.port}>" + (f";tag={to_tag}" if to_tag else "")
        lines = [f"{method} sip:caf-agent@{LOCALHOST}:{self.port} SIP/2.0",
                 f"Via: SIP/2.0/UDP {LOCALHOST}:{self.local};branch={branch or self.branch};rport",
                 f"From: <sip:race@{LOCALHOST}:{self.local}>;tag=racer", f"To: {to}", f"Call-ID: {self.call_id}",
                 f"CSeq: {cseq} {method}", f"Contact: <sip:race@{LOCALHOST}:{self.local}>", "Max-Forwards: 70"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), (LOCALHOST, self.port))

    def responses(self, until: float) -> list[tuple[int, str, str]]:
        """(status, CSeq method, To tag) of every response for ``until`` seconds."""
        out: list[tuple[int, str, str]] = []
        self.sock.settimeout(0.05)
        end = time.monotonic() + until
        while time.monotonic() < end:
            try:
                data = self.sock.recv(65536).decode("utf-8", "replace")
            except TimeoutError:
                continue
            status = int(data.split(" ", 2)[1])
            cseq = re.search(r"(?im)^CSeq:\s*\d+\s+(\w+)", data)
            tag = re.search(r"(?im)^To:.*;tag=([^;\s]+)", data)
            out.append((status, cseq.group(1) if cseq else "", tag.group(1) if tag else ""))
        return out


_OFFER = (f"v=0\r\no=race 1 1 IN IP4 {LOCALHOST}\r\ns=-\r\nc=IN IP4 {LOCALHOST}\r\nt=0 0\r\n"
          "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def test_cancel_racing_the_answer() -> None:
    """CANCEL sent as vcore answers, with the CANCEL 0 to 60 ms behind: 487, or 200 (then ACK, BYE); the
    CANCEL gets 200 (or 481 once the INVITE is answered); after the ACK, no final response is repeated."""

    async def one(agent: vcore.Terminal, n: int, lag: float) -> str:
        uac = _RawUac(agent.sip_port, n)
        try:
            uac.send("INVITE", 1, body=_OFFER)
            incoming = await asyncio.wait_for(agent.incoming().__anext__(), T)
            answering = asyncio.create_task(incoming.answer())
            await asyncio.sleep(lag)
            uac.send("CANCEL", 1)
            try:
                got = await asyncio.to_thread(uac.responses, 1.5)
                finals = {m: s for s, m, _ in got if s >= 200}
                assert finals.get("CANCEL") in (200, 481), got
                assert finals.get("INVITE") in (200, 487), got
                tag = next(t for s, m, t in got if m == "INVITE" and s >= 200)
                if finals["INVITE"] == 487:
                    assert finals["CANCEL"] == 200, got
                    uac.send("ACK", 1, to_tag=tag)  # same branch as the INVITE (RFC 3261 §17.1.1.3)
                    with pytest.raises(vcore.VcoreError):
                        await answering
                    outcome = "cancelled"
                else:
                    uac.send("ACK", 1, branch=f"{uac.branch}-ack", to_tag=tag)
                    call = await answering
                    uac.send("BYE", 2, branch=f"{uac.branch}-bye", to_tag=tag)
                    await until(call, "ended")
                    outcome = "answered"
                later = await asyncio.to_thread(uac.responses, 1.2)
                assert all(m != "INVITE" for _, m, _ in later), f"final response repeated after the ACK: {later}"
                if outcome == "answered":
                    assert (200, "BYE") in [(s, m) for s, m, _ in later], later
                return outcome
            finally:
                if not answering.done():
                    answering.cancel()
                    try:
                        await answering
                    except (asyncio.CancelledError, vcore.VcoreError):
                        pass
        finally:
            uac.close()

    async def scenario() -> None:
        async with _agent() as agent:
            outcomes = [await one(agent, n, lag) for n, lag in enumerate((0.0, 0.005, 0.02, 0.06, 0.0, 0.06))]
            await wait_for(lambda: not agent.calls)
            assert set(outcomes) <= {"cancelled", "answered"}

    run(scenario())


def _request(first: str, *, cseq: str = "1 OPTIONS", to: bool = True, extra: str = "", body: bytes = b"",
             branch: str = "z9hG4bK-raw") -> bytes:
    lines = [first, f"Via: SIP/2.0/UDP {LOCALHOST}:9;branch={branch};rport", "From: <sip:raw@127.0.0.1>;tag=r1"]
    if to:
        lines.append("To: <sip:caf-agent@127.0.0.1>")
    lines += ["Call-ID: raw-test@127.0.0.1", f"CSeq: {cseq}", "Max-Forwards: 70"]
    if extra:
        lines.append(extra)
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# (datagram, acceptable answers: status codes, or None for silence)
_BROKEN: list[tuple[bytes, set[int | None]]] = [
    (_request("OPTIONS sip:caf-agent@127.0.0.1 SIP/2.0", cseq="abc OPTIONS", branch="z9hG4bK-1"), {400, None}),
    (_request("OPTIONS sip:caf-agent@127.0.0.1 SIP/2.0", cseq="2 INVITE", branch="z9hG4bK-2"), {400}),
    (_request("OPTIONS sip:caf-agent@127.0.0.1 SIP/2.0", cseq="99999999999 OPTIONS", branch="z9hG4bK-3"),
     {400, None}),  # a CSeq that cannot be copied into a response: 400 with it, or silence
    (_request("OPTIONS sip:caf-agent@127.0.0.1 SIP/2.0", to=False, branch="z9hG4bK-4"), {400, None}),
    (_request("OPTIONS sip:caf-agent@127.0.0.1 SIP/3.0", branch="z9hG4bK-5"), {505, 400, None}),
    (_request("OPTIONS sip:caf-agent@127.0.0.1 SIP/2.0", extra="X-Long: " + "a" * 70000, branch="z9hG4bK-6")[:65000],
     {400, None}),
    (_request("OPTIONS sip:caf-agent@127.0.0.1 SIP/2.0", extra="Bad\x00Header: x", branch="z9hG4bK-7"), {400, None}),
    (_request("OPTIONS sip:caf-agent@127.0.0.1 SIP/2.0", extra="X-Bytes: ab", branch="z9hG4bK-8")
     .replace(b"X-Bytes: ab", b"X-Bytes: \xff\xfe"), {200, 400, None}),  # not UTF-8
    (b"\x00\x01\x02garbage\r\n\r\n", {None}),
    (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-stray\r\n\r\n", {None}),
    (b"INVITE\r\n\r\n", {None}),
    (b"\r\n\r\n", {None}),  # RFC 5626 keep-alive: no answer
    (bytes(range(256)) * 4, {None}),
]


def _exchange(port: int, datagram: bytes, wait: float = 1.0) -> int | None:
    """Send one datagram to vcore's SIP port; the status code of the answer, or None after ``wait`` s."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOCALHOST, 0))
        s.settimeout(wait)
        s.sendto(datagram, (LOCALHOST, port))
        try:
            data = s.recv(65536)
        except TimeoutError:
            return None
    first = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
    assert first.startswith("SIP/2.0 "), first
    return int(first.split()[1])


def test_malformed_requests_are_refused(tmp_path: Path) -> None:
    """Each malformed request gets its refusal (SIPp scenario, then raw datagrams); a call works after."""
    require_program("sipp")

    async def scenario() -> None:
        async with _agent() as agent, _Answerer(agent) as answerer:
            _ok(await _sipp(tmp_path / "malformed", "uac_malformed", agent))
            for datagram, allowed in _BROKEN:
                # the raw socket's Via names port 9, so rport makes the answer come back to our socket
                code = await asyncio.to_thread(_exchange, agent.sip_port, datagram)
                assert code in allowed, (datagram[:80], code, allowed)
            assert answerer.offered == []  # nothing broken ever reached the application
            _ok(await _sipp(tmp_path / "call", "uac_call", agent))
            assert len(answerer.calls) == 1

    run(scenario())


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_200_calls_in_a_row_leave_nothing_behind(tmp_path: Path) -> None:
    """200 SIPp calls (5 at a time) answered automatically: all succeed; fds, tasks and threads flat."""
    require_program("sipp")
    calls = 200

    async def scenario() -> None:
        async with _agent(auto_answer=True, max_calls=8) as agent:
            _ok(await _sipp(tmp_path / "warmup", "uac_call", agent, calls=3))
            await wait_for(lambda: not agent.calls)
            await asyncio.sleep(0.5)
            fds, tasks, threads = _open_fds(), len(asyncio.all_tasks()), threading.active_count()
            result = await _sipp(tmp_path / "load", "uac_call", agent, calls=calls, limit=5, rate=20, timeout=240)
            _ok(result)
            assert result.successful == calls and result.failed == 0, result.screen
            await wait_for(lambda: not agent.calls, 30)
            await asyncio.sleep(0.5)
            after = (_open_fds(), len(asyncio.all_tasks()), threading.active_count())
            assert after[0] <= fds + 2 and after[1] <= tasks and after[2] <= threads, ((fds, tasks, threads), after)

    run(scenario(), timeout=300)
