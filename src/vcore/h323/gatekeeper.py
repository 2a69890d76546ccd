"""A terminal's life with a gatekeeper: register, admit each call, disengage, unregister.

:class:`GatekeeperLink` wraps a :class:`~vcore.h323.ras.RasClient` with what a
terminal does around its calls (H.323 §7.2, H.225.0 §7):

- ``start()``: GRQ (discovery, optional: a gatekeeper that does not answer it
  still gets the RRQ) then RRQ with the terminal's aliases and call-signalling
  address; the RAS client keeps the registration alive with lightweight RRQs
  before ``timeToLive`` runs out;
- ``admit()``: ARQ before every call, placed or answered; the ACF says where to
  send the Setup (the callee for a direct call, the gatekeeper for a routed one);
- ``disengage()``: DRQ after every admitted call (bounded: a gone gatekeeper
  does not hold the call's cleanup);
- ``close()``: URQ, then the socket.

RAS answers are taken only from the gatekeeper's address, and every value used
from them is range-checked first (see :mod:`vcore.h323.ras`): a bad RCF fails
``start()``, a bad ACF (an unspecified, multicast or broadcast address, port 0)
fails ``admit()``, both with a :class:`SignallingError`; a bad GCF is as good as
none. Use from the terminal's event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import SignallingError
from .messages import Address
from .ras import RAS_PORT, RasClient

__all__ = ["GatekeeperLink", "Admission", "parse_gatekeeper"]

log = logging.getLogger(__name__)

_DRQ_TIMEOUT = 3.0
_GK = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$")


def parse_gatekeeper(text: str) -> Address:
    """``HOST[:PORT]`` or ``[V6]:PORT`` (an IP address; port 1719 by default) -> :class:`Address`."""
    m = _GK.match(text.strip())
    if m is None:
        raise SignallingError(f"gatekeeper {text!r}: expected HOST[:PORT] with an IP address")
    host = m.group("v6") or m.group("host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise SignallingError(f"gatekeeper {text!r}: {host!r} is not an IP address") from None
    port = int(m.group("port")) if m.group("port") else RAS_PORT
    if not 0 < port < 65536:
        raise SignallingError(f"gatekeeper {text!r}: port out of range")
    return Address(host, port)


def _local_toward(host: str) -> str:
    """The local address the routing table picks toward ``host`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, RAS_PORT))
        except OSError as exc:
            raise SignallingError(f"no route to the gatekeeper {host}: {exc.strerror or exc}") from None
        return str(s.getsockname()[0])


@dataclass(frozen=True)
class Admission:
    """An admitted call: its identifiers (the Setup must carry them) and where to send the Setup."""

    call_id: bytes
    conference_id: bytes
    call_reference: int
    destination: Address
    answered: bool


class GatekeeperLink:
    """Registration and admissions of one terminal with one gatekeeper (see the module docs).

    ``call_port``: the port the terminal accepts calls on; ``public_address``:
    announce this instead of the local address toward the gatekeeper (static NAT).
    """

    def __init__(self, gatekeeper: Address, aliases: Sequence[str], call_port: int, *,
                 public_address: str | None = None, timeout: float = 3.0, retries: int = 2) -> None:
        if not aliases:
            raise SignallingError("a terminal registering with a gatekeeper needs at least one alias")
        self.gatekeeper = gatekeeper
        self.aliases = tuple(aliases)
        self.call_port = call_port
        self.public_address = public_address
        self.timeout = timeout
        self.retries = retries
        self.ras: RasClient | None = None
        self.unregistered_by_gatekeeper = False

    @property
    def registered(self) -> bool:
        return self.ras is not None and self.ras.registration is not None

    async def start(self) -> None:
        """Discover and register (a :class:`SignallingError` if the gatekeeper refuses or does not answer)."""
        local = _local_toward(self.gatekeeper.host)
        signal = Address(self.public_address or local, self.call_port)
        ras = RasClient(self.gatekeeper, signal, self.aliases, timeout=self.timeout, retries=self.retries,
                        on_unregistered=self._unregistered)
        await ras.start(host=local)
        self.ras = ras
        try:
            ras.retries = 0  # one GRQ: it is optional (H.323 §7.2.1), a gatekeeper may ignore it
            try:
                await ras.discover()
            except SignallingError as exc:
                log.info("gatekeeper %s: no usable GCF (%s); registering directly", self.gatekeeper.host, exc)
            finally:
                ras.retries = self.retries
            registration = await ras.register()
        except BaseException:
            await self.close(unregister=False)
            raise
        log.info("registered with gatekeeper %s:%d as %s (endpoint %s, time to live %s s)", self.gatekeeper.host,
                 self.gatekeeper.port, ", ".join(self.aliases), registration.endpoint_id,
                 registration.time_to_live)

    def _unregistered(self) -> None:
        self.unregistered_by_gatekeeper = True
        log.warning("the gatekeeper %s unregistered this terminal", self.gatekeeper.host)

    async def admit(self, *, call_id: bytes, conference_id: bytes, call_reference: int,
                    destination: Sequence[str] = (), destination_address: Address | None = None,
                    answer: bool = False) -> Admission:
        """ARQ -> ACF (a :class:`~vcore.h323.ras.RasRejected` if refused)."""
        if self.ras is None or self.ras.registration is None:
            raise SignallingError("not registered with the gatekeeper")
        where = await self.ras.admit(call_id=call_id, conference_id=conference_id, call_reference=call_reference,
                                     destination=destination, answer=answer,
                                     destination_address=destination_address)
        return Admission(call_id, conference_id, call_reference, where, answer)

    async def disengage(self, admission: Admission, *, answered: bool) -> None:
        """DRQ -> DCF for an admitted call; failures are logged, never raised."""
        if self.ras is None or self.ras.registration is None:
            return
        try:
            await asyncio.wait_for(self.ras.disengage(call_id=admission.call_id,
                                                      conference_id=admission.conference_id,
                                                      call_reference=admission.call_reference,
                                                      answered=answered), _DRQ_TIMEOUT * (self.retries + 1))
        except (SignallingError, asyncio.TimeoutError) as exc:
            log.warning("gatekeeper: DRQ for a call failed: %s", exc)

    async def close(self, *, unregister: bool = True) -> None:
        """URQ (bounded) and close the RAS socket; idempotent."""
        ras, self.ras = self.ras, None
        if ras is None:
            return
        try:
            if unregister and ras.registration is not None:
                await asyncio.wait_for(ras.unregister(), self.timeout * (self.retries + 1))
        except (SignallingError, asyncio.TimeoutError) as exc:
            log.warning("gatekeeper: URQ failed: %s", exc)
        finally:
            await ras.close()
