"""Bad input and faults: each ends in a clear reason and a clean state; an established call survives floods."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from vcore import RtpPacket, SrtpSession

from .call_helpers import T, make_pki, run, sources, terminal, until, wait_for


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def plain_terminal(name: str, **kw: Any) -> Any:
    import vcore

    opts: dict[str, Any] = {"allow_plaintext": True, "bitrate": 300_000, "encoder": "libx264"}
    opts.update(sources())
    opts.update(kw)
    return vcore.Terminal(name, **opts)


def test_caller_not_on_allow_list_gets_a_reason(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, allow=["Murat kiosk"])
        stranger = terminal(pki_dir, "stranger", listen=False)
        async with agent, stranger:
            call = await stranger.call(agent.uri)
            ended = await call.wait_ended(T)
            assert ended.reason == "security-denied" and ended.by_peer and ended.cause == 21
            assert [r.name for r in agent.refused] == ["stranger"] and not agent.calls
            from vcore.call import CallFailed

            with pytest.raises(CallFailed):
                await call.connected

    run(scenario())


def test_untrusted_certificates(pki_dir: Path) -> None:
    from vcore.call import CallFailed

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True)
        forged = terminal(pki_dir, "Murat kiosk", pem="forged", listen=False)
        # a kiosk that trusts another CA only: the agent's certificate fails verification
        other = terminal(pki_dir, "Murat kiosk", listen=False, trust=[pki_dir / "other" / "ca.cert.pem"])
        async with agent, forged, other:
            try:
                call = await forged.call(agent.uri)
            except CallFailed as exc:
                assert exc.reason == "tls-failure"
            else:
                assert (await call.wait_ended(T)).reason == "tls-failure"
            await wait_for(lambda: bool(agent.refused))
            assert agent.refused[0].reason == "tlsFailure" and not agent.calls
            with pytest.raises(CallFailed, match="CERTIFICATE_VERIFY_FAILED") as info:
                await other.call(agent.uri)
            assert info.value.reason == "tls-failure"
            # pinning the callee's name: the agent is not "someone else"
            with pytest.raises(CallFailed, match="certificate"):
                await forged_pinned(pki_dir, agent.address)

    run(scenario())


async def forged_pinned(pki_dir: Path, address: str) -> None:
    async with terminal(pki_dir, "Murat kiosk", listen=False) as kiosk:
        await kiosk.call(address, expect_name="someone else")


class TcpRelay:
    """Forwards TCP connections to ``target``; ``cut()`` drops them all (a peer that closes TCP mid-call)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._on, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        r2, w2 = await asyncio.open_connection(*self.target)
        self.writers += [writer, w2]
        for src, dst in ((reader, w2), (r2, writer)):
            task = asyncio.ensure_future(self._pipe(src, dst))
            self.tasks.add(task)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass

    async def cut(self) -> None:
        for w in self.writers:
            w.transport.abort()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def test_peer_closes_tcp_mid_call(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False)
        async with agent, kiosk:
            relay = TcpRelay(("127.0.0.1", agent.port))
            port = await relay.start()
            try:
                call = await kiosk.call(f"h323:caf-agent@127.0.0.1:{port}")
                await asyncio.wait_for(call.connected, T)
                await until(call, "media-started")
                await relay.cut()
                ended = await call.wait_ended(T)
                assert ended.reason == "peer-closed" and ended.by_peer
                await wait_for(lambda: not agent.calls)
            finally:
                await relay.close()

    run(scenario())


def test_media_timeout_when_the_peer_sends_nothing(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, video=None, audio=None)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, media_timeout=1.5)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            ended = await call.wait_ended(T)
            assert ended.reason == "media-timeout" and not ended.by_peer and ended.cause == 102
            assert "1.5 s" in ended.detail
            await wait_for(lambda: not agent.calls)  # the agent got the ReleaseComplete

    run(scenario())


def test_wrong_srtp_keys_and_bogus_flood_are_dropped_and_counted(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, latency_probe=True)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, latency_probe=True)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await until(call, "media-started")
            ports = call.local_media
            # SRTP under a key that is not the call's: authentication fails, counted, dropped
            wrong = SrtpSession("AEAD_AES_128_GCM", os.urandom(28))
            bogus_rtp = [wrong.protect(RtpPacket(96, i, i * 3000, 0x1234, os.urandom(200)).serialize())
                         for i in range(200)]
            flood = [os.urandom(n) for n in range(1, 1200, 3)]  # random bytes, some look like RTP or RTCP
            flood += [bytes([0x80, 0x60]) + os.urandom(300) for _ in range(500)]
            before = call.stats().stream("video", "receive")
            assert before is not None
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for i, data in enumerate(bogus_rtp + flood):
                    s.sendto(data, ports["video"] if i % 2 else ports["audio"])
                    if i % 100 == 0:
                        await asyncio.sleep(0.005)
            await asyncio.sleep(1.0)
            stats = call.stats()
            video, audio = stats.stream("video", "receive"), stats.stream("audio", "receive")
            assert video is not None and audio is not None
            assert video.dropped + audio.dropped >= 600  # the RTP-looking ones: wrong key or unparsable
            assert call.ended is None
            frames = video.packets
            await wait_for(lambda: call.stats().stream("video", "receive").packets > frames + 10)  # still flowing
            assert call.stats().stream("video", "receive").latency_p50 is not None
            await call.hangup()

    run(scenario())


def test_peer_that_never_answers() -> None:
    async def scenario() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # reads the Setup, says nothing, waits for the caller to go
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with plain_terminal("kiosk", listen=False, setup_timeout=1.0) as kiosk:
                call = await kiosk.call(f"127.0.0.1:{port}")
                ended = await call.wait_ended(T)
                assert ended.reason == "timeout" and ended.cause == 102
                assert call.stats().warnings  # plaintext says so
        finally:
            server.close()
            await server.wait_closed()

    run(scenario())


@pytest.mark.parametrize("reply", [b"\x03\x00\x00\x08garb", b"\x03\x00\x00\x0a\x08\x02\x80\x01\x7f\x00",
                                   b"\x05\x00\x00\x10" + bytes(12)])
def test_malformed_answer_is_a_protocol_error(reply: bytes) -> None:
    async def scenario() -> None:
        async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(4096)
            writer.write(reply)
            await writer.drain()
            await reader.read()
            writer.close()

        server = await asyncio.start_server(bad, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with plain_terminal("kiosk", listen=False) as kiosk:
                call = await kiosk.call(f"127.0.0.1:{port}")
                ended = await call.wait_ended(T)
                assert ended.reason in ("protocol-error", "peer-closed")
                assert ended.reason == "protocol-error" or reply[0] != 3
        finally:
            server.close()
            await server.wait_closed()

    run(scenario())


def test_plaintext_call_says_so() -> None:
    async def scenario() -> None:
        agent = plain_terminal("agent", auto_answer=True)
        kiosk = plain_terminal("kiosk", listen=False)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await until(call, "media-started")
            stats = call.stats()
            assert stats.signalling == "plaintext" and not stats.media_encrypted
            assert any("plaintext signalling" in w for w in stats.warnings)
            # plaintext signalling still negotiates SRTP (keys exposed): the media suites say which
            assert all(s.cipher_suite == "AEAD_AES_128_GCM" for s in stats.streams)

    run(scenario())


def test_refusing_plaintext_without_configuration() -> None:
    import vcore

    with pytest.raises(vcore.CallError, match="allow_plaintext"):
        vcore.Terminal("kiosk")


def test_a_stream_that_stops_is_reported_degraded(pki_dir: Path) -> None:
    """The agent's camera dies mid-call: the kiosk sees video degraded ("no media") while audio goes on."""
    from vcore.media import TestPattern

    made: list[Any] = []

    def camera() -> Any:
        made.append(TestPattern(320, 240, 15))
        return made[-1]

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, video=camera)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await until(call, "media-started")
            await wait_for(lambda: call.stats().stream("video", "receive").frames > 0)
            made[0].close()  # the source ends: the sender stops, the call goes on
            event = await until(call, "degraded")
            assert event.stream == "video" and event.degraded and event.detail == "no media"
            assert call.ended is None
            await call.hangup()

    run(scenario())



def test_refusal_history_is_bounded(pki_dir: Path) -> None:
    """300 junk connections: the terminal remembers the newest 256 refusals, not every one (issue 14, 10)."""
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True)
        async with agent:
            for i in range(300):
                _, writer = await asyncio.open_connection("127.0.0.1", agent.port)
                writer.write(b"\x16\x03\x01\x00\x05junk" + bytes([i % 256]))  # not a TLS ClientHello
                writer.close()
                await writer.wait_closed()
            await wait_for(lambda: len(agent.refused) == 256 and all(r.reason == "tlsFailure" for r in agent.refused))
            await asyncio.sleep(0.5)  # the last handshakes have failed too
            assert len(agent.refused) == 256

    run(scenario())


def test_unread_incoming_calls_are_bounded(pki_dir: Path) -> None:
    """An auto-answering station whose incoming() nobody reads keeps neither ended calls nor more than the backlog."""
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, incoming_backlog=2)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False)
        calls = []
        async with agent, kiosk:
            for _ in range(4):
                call = await kiosk.call(agent.uri)
                await asyncio.wait_for(call.connected, T)
                await call.hangup()
                await wait_for(lambda: not agent.calls)
                calls.append(call)
        kept = [i async for i in agent.incoming()]
        # calls that ended unread are forgotten at the next offer: only the last one is left
        assert len(kept) == 1 and kept[0].call is not None and kept[0].call.ended is not None
        with pytest.raises(Exception, match="incoming_backlog must be at least 1"):
            terminal(pki_dir, "CAF agent", incoming_backlog=0)

    run(scenario())


def test_a_media_failure_ends_the_call_with_its_cause(pki_dir: Path) -> None:
    """A source that fails mid-call (a camera unplugged) ends the call ``media-error``, saying what failed."""
    from vcore import MediaError
    from vcore.media import TestPattern

    class Failing(TestPattern):
        def __init__(self) -> None:
            super().__init__(160, 120, 15)
            self.reads = 0

        def read(self) -> Any:
            self.reads += 1
            if self.reads > 10:
                raise MediaError("camera unplugged")
            return super().read()

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, video=Failing())
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            ended = await call.wait_ended(T)
            assert ended.reason == "media-error" and "video send: camera unplugged" in ended.detail, ended
            await wait_for(lambda: not agent.calls)
            assert agent.calls == []

    run(scenario())


def test_bad_terminal_names_are_refused() -> None:
    import vcore
    from vcore import CallError

    for bad in ("", "x" * 256, "é" * 128, "kiosk\n2"):
        with pytest.raises(CallError, match="1 to 255 bytes of UTF-8"):
            vcore.Terminal(bad, allow_plaintext=True)


def test_a_second_caller_to_a_busy_station_hears_busy(pki_dir: Path) -> None:
    """max_calls=1: the second caller's call ends ``busy`` (cause 17), not ``peer-closed``.

    Before: the station released and closed at once, the caller's reply to CallProceeding failed first, and
    the ReleaseComplete waiting in its buffer was never read.
    """
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True)
        first = terminal(pki_dir, "Murat kiosk", listen=False)
        second = terminal(pki_dir, "Other kiosk", listen=False, accept_roles=None)
        async with agent, first, second:
            call = await first.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            for _ in range(3):
                turned_away = await second.call(agent.uri)
                ended = await turned_away.wait_ended(T)
                assert (ended.reason, ended.cause, ended.by_peer) == ("busy", 17, True), ended
            assert len(agent.calls) == 1
            await call.hangup()

    run(scenario())
