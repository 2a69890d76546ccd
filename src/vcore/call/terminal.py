"""The terminal: its listeners (H.323, SIP), gatekeeper, credentials, and its calls.

Its credentials (identity, trust anchors, CRL, TLS contexts, aliases) are :mod:`vcore.call.credentials`;
the calls it places are :mod:`vcore.call.h323_calls` and :mod:`vcore.call.sip_calls`; the calls it is
offered are :class:`~vcore.call.incoming.IncomingCall`. A refused busy caller and a call that could not
reach its peer are logged here (``vcore.call.terminal``: the station log rewrites both lines).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import pki
from ..directory import Card, Directory
from ..errors import CallError
from ..h323 import signalling as sig
from ..h323.fast_connect import MediaPolicy
from ..h323.gatekeeper import GatekeeperLink, parse_gatekeeper
from ..h323.keys import DEFAULT_SUITES
from ..h323.messages import DEFAULT_FORMATS, MediaFormat
from ..h323.q931 import Cause
from .answering import OfferedCalls, accept_calls
from .call import Call
from .credentials import Credentials, accept_roles as _accept_roles, own_aliases, utcnow
from .events import CallFailed
from .h323_calls import Unreached, place_h323_call, register
from .incoming import IncomingCall
from ..supervisor import Supervisor
from ..callcontrol import CallControl

if TYPE_CHECKING:
    from ..sip import Registration, SipListener, SipSettings
    from ..media import Source
    from ..transport import PortRange
    from ..visca import ViscaCamera


log = logging.getLogger(__name__)


_ACCEPT = "accept loop"
_CRL_WATCH = "credentials watch"
_SIP_ACCEPT = "SIP accept loop"


# --------------------------------------------------------------------------- the terminal


SourceSpec = Any  # a Source, or a zero-argument callable returning a fresh Source per call


class Terminal:
    """An H.323 terminal: places and answers calls with SRTP media, over mutual TLS.

    ``video``/``audio``: a source for the next call (closed when that call
    ends) or a zero-argument callable that makes a fresh one per call (what an
    agent station answering all day needs). ``identity``: a
    :class:`~vcore.pki.Identity` or the path of its PEM; ``trust``: PEM files
    of the trust anchors; ``crl``: the CRL peers are checked against (default
    ``"auto"``: the ``crl.pem`` next to the trust anchor; a terminal with an
    expired CRL refuses to start, a running one takes a new file within
    :attr:`crl_poll_interval` and logs an old one; ``None``: no revocation
    check, logged; see :mod:`vcore.revocation`). Without an identity the
    terminal runs plaintext, which needs ``allow_plaintext=True`` and shows in
    every call's stats. ``auto_answer`` answers every admitted call;
    ``allow``: certificate names admitted (others get ``securityDenied``).
    ``directory``: ``cards.toml`` (path or :class:`Directory`) for
    ``call(card=n)``. ``camera``: a :class:`~vcore.visca.ViscaCamera` whose
    presets calls can recall. ``listen``: accept calls on ``host:port``
    (port 0: any free port, see :attr:`port`; host ``""``: every address).
    ``media_host``: bind the media sockets to this address (default: every
    address of the peer's family); the media address announced to a peer is
    the one this terminal uses toward it (the signalling connection's local
    address), or ``public_address`` for a station behind a port-forwarding
    router (static NAT). ``rtp_ports``: the UDP range (``(16384, 16483)`` or
    ``"16384-16483"``) media takes its RTP (even) / RTCP (odd) pairs from; two
    pairs per call, and a third for an H.323 call's H.224 data channel (far-end camera control; left out,
    with a warning, when the range has no pair left). Media goes back to where the peer's authenticated packets
    come from (symmetric RTP), so a peer behind a NAT gets its media. ``max_calls``: further callers
    get ``busy``. ``recordings``: a directory where answered calls are
    recorded. ``video_sink``/``audio_sink``: zero-argument callables making a
    sink (or callable) per call for the decoded frames. ``remote_camera``: let the
    peer steer this camera (H.281 far-end camera control on the call's H.224 data channel, or the user-input
    strings of older vcore peers; :meth:`Call.remote_camera_preset`, :meth:`Call.remote_camera_move`).
    ``lip_sync``: hold the received sound back (up to 1 s) when the received
    pictures reach their sink later than the sound captured with them
    (:attr:`CallStats.lip_sync`). ``gatekeeper``: ``"HOST[:1719]"``: register
    ``aliases`` (default: the certificate's name) on start, ask admission (ARQ)
    before every call placed or answered, disengage (DRQ) after it, unregister
    on close; ``call("h323:ALIAS")`` then finds the alias through it.
    ``latency_probe``: stamp each frame's capture time in an RTP header
    extension (id 1, not negotiated, in clear) and measure capture-to-decoded
    latency (``StreamStats.latency_p50``); for tests and benchmarks between
    vcore terminals sharing a clock, off by default. ``incoming_backlog``: how
    many offered calls :meth:`incoming` keeps for a reader (the oldest are
    forgotten, so an auto-answering station nobody iterates does not grow).
    ``congestion_control`` (default on): ``bitrate`` is the video's ceiling,
    and the call starts at ``start_bitrate`` (default 300 kbit/s or
    ``bitrate`` if lower), then follows the line (RFC 8888 feedback with a vcore
    peer, receiver reports and TMMBR with others; see ``docs/congestion.md``),
    moving the picture size and frame rate down a ladder when the bitrate
    cannot hold the quality. Off: the video is sent at ``bitrate`` whatever
    the line (logged; for measurements).
    ``audio_processing`` (default ``"auto"``): echo cancellation, noise
    suppression, gain control and high-pass filter on the sound sent, when the
    call's audio source is a real :class:`~vcore.media.Microphone` and its
    audio sink a :class:`~vcore.media.Speaker` (test sources never get it):
    ``"webrtc"`` (WebRTC AEC3, the ``livekit`` package), ``"speex"``
    (SpeexDSP), ``"auto"`` (the first of those installed) or ``"off"``
    (logged); see :mod:`vcore.media.audio_processing`.

    ``sip``: a :class:`vcore.sip.SipSettings` runs a SIP user agent beside H.323 (``listen=False``: SIP
    only): :meth:`call` takes ``sips:USER@host[:port]`` / ``sip:...;transport=tcp|udp`` URIs, SIP callers
    come through :meth:`incoming` like H.323 ones, :attr:`sip_uri` is where to reach it; with a
    registrar it registers on start (digest credentials) and unregisters on close. TLS by default
    (the same PKI and identity rules); UDP/TCP need ``allow_plaintext=True``.

    Identity over TLS: ``aliases`` default to the certificate's (``h323:``
    subjectAltNames, see :mod:`vcore.pki`); a call to ``h323:ALIAS@host``
    checks that the answering certificate holds ALIAS, and a call by address
    alone is refused. Callers must hold the aliases they claim; without
    ``allow``, ``accept_roles`` (default ``"auto"``: an agent's certificate
    answers kiosks, a kiosk's answers agents) limits who may call.
    ``legacy_certificates``: accept certificates without aliases (logged).

    Use from one event loop; ``async with`` starts and closes it.
    """

    def __init__(
        self,
        name: str,
        *,
        video: SourceSpec = None,
        audio: SourceSpec = None,
        camera: ViscaCamera | None = None,
        identity: pki.Identity | str | os.PathLike[str] | None = None,
        trust: Sequence[str | os.PathLike[str]] = (),
        crl: str | os.PathLike[str] | None = "auto",
        host: str = "127.0.0.1",
        port: int = 0,
        listen: bool = True,
        media_host: str | None = None,
        rtp_ports: PortRange | tuple[int, int] | str | None = None,
        public_address: str | None = None,
        gatekeeper: str | None = None,
        aliases: Sequence[str] | None = None,
        auto_answer: bool = False,
        allow: Iterable[str] | None = None,
        directory: Directory | str | os.PathLike[str] | None = None,
        allow_plaintext: bool = False,
        formats: Sequence[MediaFormat] = DEFAULT_FORMATS,
        suites: Sequence[str] = DEFAULT_SUITES,
        fast_connect: bool = True,
        bitrate: int = 1_500_000,
        encoder: str = "auto",
        media_timeout: float = 10.0,
        rtcp_interval: float = 1.0,
        setup_timeout: float = 10.0,
        max_calls: int = 1,
        recordings: str | os.PathLike[str] | None = None,
        video_sink: Callable[[], Any] | None = None,
        audio_sink: Callable[[], Any] | None = None,
        remote_camera: bool = False,
        lip_sync: bool = True,
        latency_probe: bool = False,
        incoming_backlog: int = 32,
        accept_roles: Iterable[str] | None | str = "auto",
        legacy_certificates: bool = False,
        congestion_control: bool = True,
        start_bitrate: int | None = None,
        audio_processing: str | bool = "auto",
        sip: SipSettings | None = None,
    ) -> None:
        if not name or len(name.encode()) > 255 or any(ord(c) < 32 for c in name):
            raise CallError(f"terminal name {name[:40]!r}…: 1 to 255 bytes of UTF-8, no control characters "
                            "(it is the RTCP CNAME and the H.225.0 display)")
        self.name = name
        self.lip_sync = lip_sync
        self.latency_probe = latency_probe
        self.congestion_control = congestion_control
        if not congestion_control:
            log.warning("%s: congestion control off: video goes at its configured bitrate whatever the line",
                        name)
        if start_bitrate is not None and start_bitrate <= 0:
            raise CallError(f"start_bitrate must be positive, not {start_bitrate}")
        self.start_bitrate = start_bitrate
        from ..media.audio_processing import check_mode

        self.audio_processing = check_mode(audio_processing)  # a named engine that is missing fails here
        if self.audio_processing == "off":
            log.info("%s: audio processing off: with a microphone and a speaker, the peer will hear its own "
                     "voice", name)
        if incoming_backlog < 1:
            raise CallError(f"incoming_backlog must be at least 1, not {incoming_backlog}")
        self.incoming_backlog = incoming_backlog
        if latency_probe:
            log.info("%s: latency probe on: every frame carries its capture time in an RTP header extension "
                        "(in clear, not negotiated); for tests and benchmarks between vcore terminals", name)
        self._video = video
        self._audio = audio
        self.camera = camera
        self.remote_camera = remote_camera
        self.host = host
        self.listen_port = port
        self.listen = listen
        from ..transport import check_host, is_wildcard, parse_port_range

        self.media_host = check_host(media_host) if media_host and not is_wildcard(media_host) else None
        self.rtp_ports = parse_port_range(rtp_ports) if rtp_ports is not None else None
        self.public_address = check_host(public_address) if public_address else None
        self.auto_answer = auto_answer
        self.allow = frozenset(allow) if allow is not None else None
        if isinstance(directory, (str, os.PathLike)):
            directory = Directory.load(directory)
        self.directory = directory
        if not 50_000 <= bitrate <= 50_000_000:
            raise CallError(f"bitrate {bitrate} bit/s is out of range (50 kbit/s to 50 Mbit/s)")
        self.bitrate = bitrate
        self.encoder = encoder
        self.media_timeout = media_timeout
        self.rtcp_interval = rtcp_interval
        self.max_calls = max_calls
        self.recordings = recordings
        self._sinks = {"video": video_sink, "audio": audio_sink}
        if identity is not None and not isinstance(identity, pki.Identity):
            identity = pki.Identity.load(identity)
        self.identity = identity
        self._credentials: Credentials | None = None
        self._listener: sig.SignallingListener | None = None
        if identity is not None:
            self._credentials = Credentials(name, identity, trust, crl, utcnow())
        elif not allow_plaintext:
            raise CallError("no identity: give identity= and trust= (TLS), or allow_plaintext=True")
        policy = MediaPolicy(tuple(formats), tuple(suites), allow_plaintext=allow_plaintext, h224=True)
        self.aliases = own_aliases(name, identity, aliases, legacy_certificates)
        roles = _accept_roles(identity, accept_roles)  # "auto": an agent answers kiosks, a kiosk answers agents
        if identity is not None and listen and self.allow is None and roles is None:
            log.warning("%s: no allow-list and no role policy: any certificate of the trust anchors may call "
                        "(issue certificates with --role, or give allow=)", name)
        self.accept_roles = roles
        self.config = sig.SignallingConfig(self.aliases[0], policy=policy,
                                           allow_list=self.allow, allow_plaintext_signalling=allow_plaintext,
                                           fast_connect=fast_connect, setup_timeout=setup_timeout,
                                           display_name=name, accept_roles=roles,
                                           legacy_certificates=legacy_certificates)
        self.gatekeeper = parse_gatekeeper(gatekeeper) if gatekeeper else None
        self._gk: GatekeeperLink | None = None
        self._tasks = Supervisor(f"terminal {name}", on_failure=self._task_failed)
        self._crl_watched = False
        self._incoming = OfferedCalls()
        self._calls: set[Call] = set()
        self._pending: set[CallControl] = set()
        self._closed = False
        self.sip = sip  # SIP beside H.323 (vcore.call.sip_calls); None: H.323 only
        self._sip: SipListener | None = None
        self._registration: Registration | None = None
        if sip is not None:
            from .sip_calls import check_settings

            check_settings(sip, tls=identity is not None, allow_plaintext=allow_plaintext)

    def __repr__(self) -> str:
        return f"<Terminal {self.name!r} {'TLS' if self.identity else 'plaintext'} calls={len(self._calls)}>"

    # ------------------------------------------------------------ lifecycle

    crl_poll_interval = 60.0
    """Seconds between two looks at the CRL file (a new one is taken; an old one is logged)."""

    @property
    def _server_ctx(self) -> ssl.SSLContext | None:
        """The TLS context callers meet (None: plaintext)."""
        return self._credentials.server_context if self._credentials is not None else None

    @property
    def _client_ctx(self) -> ssl.SSLContext | None:
        """The TLS context calls are placed with (None: plaintext)."""
        return self._credentials.client_context if self._credentials is not None else None

    def _tls_contexts(self) -> None:
        """Hand the TLS contexts (rebuilt after a new CRL) to the listeners."""
        if self._listener is not None:
            self._listener.ssl_context = self._server_ctx
        if self._sip is not None and self._credentials is not None:
            self._sip.set_tls_contexts(self._credentials.server_context, self._credentials.client_context)

    def set_allow(self, allow: Iterable[str] | None) -> None:
        """Replace the allow-list (certificate names admitted; None: by role) for the next callers.

        Calls in progress go on (a station reloading its configuration does not drop anybody).
        """
        self.allow = frozenset(allow) if allow is not None else None
        self.config = dataclasses.replace(self.config, allow_list=self.allow)
        if self._listener is not None:
            self._listener.config = self.config
        if self._sip is not None:
            self._sip.config = dataclasses.replace(self._sip.config, allow_list=self.allow)
        log.info("%s: allow-list %s", self.name, ", ".join(sorted(self.allow)) if self.allow else "off (by role)")

    def check_credentials(self) -> str | None:
        """Take a changed CRL file now (not at the next poll); returns why calls are refused, or None."""
        return self._check_crl()

    def _check_crl(self) -> str | None:
        """Take a changed CRL file; log an old one; returns why calls are refused now, or None."""
        if self._credentials is None:
            return None
        if self._credentials.reload():
            self._tls_contexts()
        return self._credentials.report(utcnow())

    async def _watch_credentials(self) -> None:
        """Every :attr:`crl_poll_interval`: a new CRL file; once a day: our own certificate's expiry."""
        assert self._credentials is not None
        said = utcnow()
        while True:
            await asyncio.sleep(self.crl_poll_interval)
            self._check_crl()
            now = utcnow()
            if now - said >= dt.timedelta(days=1):
                said = now
                self._credentials.say_validity(now)

    def _task_failed(self, name: str, exc: BaseException) -> None:
        """A terminal task failed (logged with its traceback by the supervisor): a station on all day restarts it."""
        if self._closed:
            return
        what = self._sip_accept_loop if name.endswith(_SIP_ACCEPT) else self._accept_loop if name.endswith(_ACCEPT) \
            else self._watch_credentials if name.endswith(_CRL_WATCH) else None
        if what is not None:
            log.error("%s: restarting %s in 1 s", self.name, name)
            self._tasks.spawn(self._restart(what), name.rsplit(": ", 1)[-1])

    @staticmethod
    async def _restart(what: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(1.0)
        await what()

    async def start(self) -> None:
        """Listen for calls (``listen``) and register with the gatekeeper (``gatekeeper``)."""
        if self.listen and self._listener is None:
            self._listener = sig.SignallingListener(self.config, self._server_ctx)
            await self._listener.start(self.host, self.listen_port)
            self._tasks.spawn(self._accept_loop(), _ACCEPT)
        if self._credentials is not None and not self._crl_watched:
            self._crl_watched = True
            self._tasks.spawn(self._watch_credentials(), _CRL_WATCH)
        if self.sip is not None and self._sip is None:
            from .sip_calls import sip_config, start_sip

            try:
                self._sip, self._registration = await start_sip(self, self.sip, sip_config(self, self.sip,
                                                                                           self.config.policy))
            except CallError:
                await self.close()
                raise
            self._tasks.spawn(self._sip_accept_loop(), _SIP_ACCEPT)
        if self.gatekeeper is not None and self._gk is None:
            try:
                self._gk = await register(self, self.gatekeeper)
            except CallError:
                await self.close()
                raise

    async def close(self) -> None:
        """Hang up every call, stop listening (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self._tasks.aclose()
        for call in list(self._calls):
            if call.ended is None:
                call._local_reason = call._local_reason or "terminal-closed"
            await call.hangup()
        for session in list(self._pending):
            await session.hangup("undefinedReason", Cause.TEMPORARY_FAILURE)
        if self._gk is not None:
            await self._gk.close()  # URQ, bounded
            self._gk = None
        if self._listener is not None:
            await self._listener.close()
        if self._registration is not None:
            await self._registration.close()  # REGISTER Expires: 0, bounded
        if self._sip is not None:
            await self._sip.close()
        await self._incoming.close()

    async def __aenter__(self) -> Terminal:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The port this terminal accepts calls on."""
        if self._listener is None:
            raise CallError("the terminal is not listening (start it, with listen=True)")
        return self._listener.port

    @property
    def address(self) -> str:
        """``host:port`` to call this terminal at."""
        host = self.host or "127.0.0.1"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def sip_port(self) -> int:
        """The port this terminal's SIP user agent listens on (with ``sip=``)."""
        if self._sip is None:
            raise CallError("the terminal has no SIP user agent (sip=SipSettings(...), then start it)")
        return self._sip.port

    @property
    def sip_uri(self) -> str:
        """``sips:USER@host:port`` (``sip:...;transport=tcp`` / ``sip:...``): what a SIP peer dials."""
        if self._sip is None:
            raise CallError("the terminal has no SIP user agent (sip=SipSettings(...), then start it)")
        return str(self._sip.uri)

    @property
    def uri(self) -> str:
        """``h323:ALIAS@host:port``: what another terminal dials to reach this one (its first alias)."""
        return f"h323:{self.aliases[0]}@{self.address}"

    @property
    def refused(self) -> list[sig.RefusedCall]:
        """Callers refused before a call existed (untrusted certificate, not on the allow-list)."""
        sip = list(self._sip.refused) if self._sip is not None else []
        return (list(self._listener.refused) if self._listener else []) + sip

    @property
    def calls(self) -> list[Call]:
        return [c for c in self._calls if c.ended is None]

    # ------------------------------------------------------------ calls

    async def call(self, address: str | None = None, *, card: int | None = None,
                   record: str | os.PathLike[str] | None = None, expect_name: str | None = None) -> Call:
        """Call ``address`` (``h323:alias@host[:port]`` or ``host[:port]``) or directory card ``card``.

        ``expect_name``: the certificate name the callee must present (a card's ``certificate``).
        ``record``: write what the peer sends to this MP4. Raises :class:`CallFailed` when no call
        could be set up (no connection, TLS refused); later failures end the call with a reason.
        """
        if self._closed:
            raise CallError("the terminal is closed")
        if card is not None:
            if self.directory is None:
                raise CallError("this terminal has no directory (directory=cards.toml)")
            entry: Card = self.directory[card]
            address = entry.address
            expect_name = expect_name or entry.certificate
        if address is None:
            raise CallError("give an address or a card number")
        from .sip_calls import is_sip_address, place_sip_call

        if is_sip_address(address):
            if self._sip is None:
                raise CallError(f"{address!r} is a SIP address: give the terminal sip=SipSettings(...) and start it")
            if len(self.calls) >= self.max_calls:
                raise CallError(f"already in {len(self.calls)} call(s) (max_calls={self.max_calls})")
            if problem := self._check_crl():
                raise CallFailed(problem, "crl-expired")
            return await place_sip_call(self, self._sip, address, record=record, expect_name=expect_name)
        if len(self.calls) >= self.max_calls:
            raise CallError(f"already in {len(self.calls)} call(s) (max_calls={self.max_calls})")
        problem = self._check_crl()
        if problem:
            raise CallFailed(problem, "crl-expired")
        try:
            return await place_h323_call(self, address, record=record, expect_name=expect_name)
        except Unreached as exc:  # said in the station log (vcore.station_log rewrites this line)
            log.warning("call to %s failed (%s): %s%s", address, exc.reason, str(exc), exc.note)
            raise CallFailed(str(exc), exc.reason) from None

    def incoming(self) -> AsyncIterator[IncomingCall]:
        """Calls offered to this terminal (already answered with ``auto_answer``); ends when it closes."""
        return self._incoming.calls()

    async def camera_preset(self, preset: int) -> None:
        """Recall a preset of the local VISCA camera."""
        if self.camera is None:
            raise CallError("this terminal has no camera")
        await self.camera.preset_recall(preset)

    # ------------------------------------------------------------ internals

    def _make_source(self, kind: str) -> Source | None:
        spec = self._video if kind == "video" else self._audio
        if spec is None:
            return None
        if callable(spec) and not hasattr(spec, "read"):
            return spec()  # type: ignore[no-any-return]
        # a source object serves one call: it is closed when that call's sender closes
        if kind == "video":
            self._video = None
        else:
            self._audio = None
        return spec  # type: ignore[no-any-return]

    def _process_audio(self, source: Any, sink: Any) -> None:
        """Echo cancellation & co. between this call's microphone and speaker (real devices only)."""
        from ..media.audio_processing import AudioProcessingError, attach

        try:
            attach(source, sink, self.audio_processing)
        except AudioProcessingError as exc:  # the call goes on, with the echo: say so
            log.warning("%s: no audio processing for this call: %s", self.name, exc)

    def _make_sink(self, kind: str) -> Any:
        factory = self._sinks[kind]
        if factory is None:
            return None
        from ..media.sinks import as_sink

        return as_sink(factory())

    def _forget(self, call: Call) -> None:
        self._calls.discard(call)

    async def _sip_accept_loop(self) -> None:
        assert self._sip is not None
        await accept_calls(self._sip.accept, self._offer, "SIP call", lambda s: s.remote_aliases)

    async def _accept_loop(self) -> None:
        assert self._listener is not None
        await accept_calls(self._listener.accept, self._offer, "call", lambda s: s.peer_name)

    async def _offer(self, session: CallControl) -> None:
        waiting = [s for s in self._pending if s.released is None]
        self._pending = set(waiting)
        if len(self.calls) + len(waiting) >= self.max_calls:
            log.info("busy: refusing a call from %s", session.peer_name)
            await session.hangup("undefinedReason", Cause.USER_BUSY)
            return
        self._pending.add(session)  # until answered or rejected; hung up if the terminal closes first
        incoming = IncomingCall(self, session)
        if self.auto_answer:
            await incoming.answer()
        else:
            await incoming.ring()
        await self._incoming.put(incoming, self.incoming_backlog)
