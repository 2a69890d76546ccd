"""Terminals with a gatekeeper: register, admission before each call, a call by alias alone, DRQ, URQ.

The gatekeeper here is a small in-process RAS responder that keeps a real
alias -> call-signalling-address table (what GnuGk does in direct mode). The
GnuGk interop case is in test_h323_interop.py (skipped without VCORE_GNUGK).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.call_helpers import T, make_pki, run, terminal
from vcore.h323.messages import Address
from vcore.h323.ras import (
    admission_confirm,
    admission_reject,
    disengage_confirm,
    encode_ras,
    gatekeeper_confirm,
    parse_ras,
    registration_confirm,
    unregistration_confirm,
    unregistration_request,
)


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


class Gatekeeper(asyncio.DatagramProtocol):
    """Direct-mode gatekeeper: RCF with an endpoint id, ACF with the callee's registered address."""

    def __init__(self, answer_grq: bool = True) -> None:
        self.answer_grq = answer_grq
        self.table: dict[str, Address] = {}
        self.endpoints: dict[str, tuple[str, int]] = {}
        self.log: list[tuple[str, Any]] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    @property
    def port(self) -> int:
        return int(self.transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        m = parse_ras(data)
        self.log.append((m.name, m.body))
        seq = m.sequence or 0
        if m.name == "gatekeeperRequest":
            if not self.answer_grq:
                return  # GRQ is optional: a gatekeeper may ignore it
            reply = ("gatekeeperConfirm", gatekeeper_confirm(seq, Address("127.0.0.1", self.port), "testGK"))
        elif m.name == "registrationRequest":
            ep = f"ep{len(self.endpoints) + 1}"
            if not m.body["keepAlive"]:
                signal = Address.from_h225(m.body["callSignalAddress"][0])
                for kind, alias in m.body.get("terminalAlias", []):
                    self.table[alias] = signal
                self.endpoints[ep] = addr
            reply = ("registrationConfirm", registration_confirm(seq, Address("127.0.0.1", 1720), ep,
                                                                 gatekeeper_id="testGK", time_to_live=60))
        elif m.name == "admissionRequest":
            if m.body["answerCall"]:
                reply = ("admissionConfirm", admission_confirm(seq, Address.from_h225(m.body["destCallSignalAddress"])))
            else:
                names = [a for _, a in m.body.get("destinationInfo", [])]
                found = next((self.table[n] for n in names if n in self.table), None)
                reply = ("admissionConfirm", admission_confirm(seq, found)) if found else \
                    ("admissionReject", admission_reject(seq, "calledPartyNotRegistered"))
        elif m.name == "disengageRequest":
            reply = ("disengageConfirm", disengage_confirm(seq))
        elif m.name == "unregistrationRequest":
            reply = ("unregistrationConfirm", unregistration_confirm(seq))
        else:
            return
        self.transport.sendto(encode_ras(*reply), addr)

    def names(self) -> list[str]:
        return [n for n, _ in self.log]


async def _gatekeeper(answer_grq: bool = True) -> Gatekeeper:
    _, gk = await asyncio.get_running_loop().create_datagram_endpoint(lambda: Gatekeeper(answer_grq),
                                                                      local_addr=("127.0.0.1", 0))
    return gk


def test_call_by_alias_through_the_gatekeeper(pki_dir: Path) -> None:
    async def scenario() -> None:
        gk = await _gatekeeper()
        where = f"127.0.0.1:{gk.port}"
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, gatekeeper=where, aliases=["caf-agent", "3301"])
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, gatekeeper=where)
        async with agent, kiosk:
            assert gk.table["caf-agent"] == Address("127.0.0.1", agent.port)
            call = await kiosk.call("h323:caf-agent")  # no host: the gatekeeper resolves the alias
            await asyncio.wait_for(call.connected, T)
            await call.hangup()
            with pytest.raises(Exception, match="calledPartyNotRegistered"):
                await kiosk.call("h323:nobody")
            for _ in range(100):
                if gk.names().count("disengageRequest") >= 2:
                    break
                await asyncio.sleep(0.05)
        gk.transport.close()
        names = gk.names()
        arqs = [b for n, b in gk.log if n == "admissionRequest"]
        # caller's ARQ, callee's ARQ (answerCall), the refused one; both ends disengage; both unregister
        assert [b["answerCall"] for b in arqs] == [False, True, False]
        assert arqs[0]["callIdentifier"] == arqs[1]["callIdentifier"]  # the Setup carried the admitted call id
        assert arqs[0]["conferenceID"] == arqs[1]["conferenceID"]
        assert names.count("disengageRequest") == 2 and names.count("unregistrationRequest") == 2
        assert names.count("gatekeeperRequest") == 2

    run(scenario())


def test_ras_only_from_the_gatekeeper(pki_dir: Path) -> None:
    """A stranger's URQ does not unregister the terminal, and its forged ACF is not believed."""
    async def scenario() -> None:
        gk = await _gatekeeper(answer_grq=False)  # and one that ignores GRQ: the terminal registers anyway
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, gatekeeper=f"127.0.0.1:{gk.port}")
        async with kiosk:
            link = kiosk._gk
            assert link is not None and link.ras is not None and link.registered
            ras_port = link.ras.ras_address.port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
                stranger.sendto(encode_ras("unregistrationRequest", unregistration_request(
                    7, Address("127.0.0.1", 1300), "ep1")), ("127.0.0.1", ras_port))
                for seq in range(1, 65536, 997):  # forged ACFs for any sequence number
                    stranger.sendto(encode_ras("admissionConfirm", admission_confirm(
                        seq, Address("127.0.0.66", 1300))), ("127.0.0.1", ras_port))
                await asyncio.sleep(0.2)
                assert link.registered and link.ras.ignored >= 2
                with pytest.raises(Exception, match="calledPartyNotRegistered"):
                    await kiosk.call("h323:caf-agent")
        gk.transport.close()

    run(scenario())


def test_gatekeeper_that_never_answers_is_a_clear_error(pki_dir: Path) -> None:
    async def scenario() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            kiosk = terminal(pki_dir, "Murat kiosk", listen=False,
                             gatekeeper=f"127.0.0.1:{silent.getsockname()[1]}")
            from vcore import CallError

            with pytest.raises(CallError, match="cannot register with the gatekeeper .*did not answer"):
                await kiosk.start()
            await kiosk.close()

    run(scenario())


@pytest.mark.parametrize("bad", ["gk.example", "192.0.2.1:99999", "[2001:db8::1", ""])
def test_bad_gatekeeper_address(pki_dir: Path, bad: str) -> None:
    from vcore import CallError

    if not bad:
        t = terminal(pki_dir, "Murat kiosk", listen=False, gatekeeper=bad)  # empty: no gatekeeper
        assert t.gatekeeper is None
        return
    with pytest.raises(CallError, match="gatekeeper"):
        terminal(pki_dir, "Murat kiosk", listen=False, gatekeeper=bad)


def test_admitted_call_that_cannot_connect_is_disengaged(pki_dir: Path) -> None:
    """The gatekeeper admits a call to an address where nobody answers: the call fails and a DRQ follows."""
    from vcore.call import CallFailed

    async def scenario() -> None:
        gk = await _gatekeeper()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            gk.table["ghost"] = Address("127.0.0.1", s.getsockname()[1])  # bound, not listening: refused
            kiosk = terminal(pki_dir, "Murat kiosk", listen=False, gatekeeper=f"127.0.0.1:{gk.port}")
            async with kiosk:
                with pytest.raises(CallFailed) as info:
                    await kiosk.call("h323:ghost")
                assert info.value.reason == "connection-failed"
                drqs = [b for n, b in gk.log if n == "disengageRequest"]
                arqs = [b for n, b in gk.log if n == "admissionRequest"]
                assert len(drqs) == 1 and drqs[0]["callIdentifier"] == arqs[0]["callIdentifier"]
                assert drqs[0]["disengageReason"][0] == "normalDrop"
        gk.transport.close()

    run(scenario())
