"""The right peer (issue 14, finding 1): the answering certificate must hold the dialled alias; a caller must hold
the alias it claims; an agent without an allow-list answers kiosks only; old certificates only when asked."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vcore import CallError, pki
from vcore.call import CallFailed
from vcore.h323.fast_connect import MediaPolicy
from vcore.h323.messages import DEFAULT_FORMATS, Address
from vcore.h323.signalling import SignallingConfig, place_call

from .call_helpers import T, make_pki, run, terminal, wait_for

MEDIA = {1: (Address("127.0.0.1", 47000), Address("127.0.0.1", 47001)),
         2: (Address("127.0.0.1", 47002), Address("127.0.0.1", 47003))}


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = make_pki(tmp_path_factory.mktemp("pki"))
    _legacy(base, "Old kiosk")
    return base


def _legacy(base: Path, name: str) -> None:
    """A certificate as vcore issued them before aliases and roles: CN only."""
    ca = pki.CertificateAuthority.load(base / "ca")
    ca_key = serialization.load_pem_private_key((base / "ca" / "ca.key.pem").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    pki.Identity(key, (cert, ca.certificate)).save(base / f"{name}.pem")


def test_certificates_carry_aliases_and_roles(pki_dir: Path) -> None:
    agent = pki.Identity.load(pki_dir / "CAF agent.pem")
    kiosk = pki.Identity.load(pki_dir / "Murat kiosk.pem")
    assert (agent.aliases, agent.role) == (("caf-agent", "3301"), "agent")
    assert (kiosk.aliases, kiosk.role) == (("murat-kiosk",), "kiosk")
    assert pki.default_alias("CAF  agent (Aurillac)") == "caf-agent-aurillac"
    ca = pki.CertificateAuthority.load(pki_dir / "ca")
    for bad, message in [({"aliases": ["a b"]}, "not allowed"), ({"aliases": ["x@y"]}, "not allowed"),
                         ({"role": "admin"}, "expected one of kiosk, agent"), ({"days": 0}, "at least one day")]:
        with pytest.raises(pki.PkiError, match=message):
            ca.issue("x", **bad)  # type: ignore[arg-type]


def test_another_kiosk_cannot_answer_as_the_agent(pki_dir: Path) -> None:
    """The finding: a call to h323:caf-agent@HOST reached another kiosk's certificate and sent it the keys."""
    async def scenario() -> None:
        impostor = terminal(pki_dir, "Other kiosk", auto_answer=True, accept_roles=None)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False)
        async with impostor, kiosk:
            with pytest.raises(CallFailed, match="not for the dialled 'caf-agent'") as info:
                await kiosk.call(f"h323:caf-agent@{impostor.address}")
            assert info.value.reason == "security-denied"
            assert not impostor.calls

    run(scenario())


def test_a_call_by_address_alone_is_refused_over_tls(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False)
        async with agent, kiosk:
            with pytest.raises(CallError, match=r"names no alias: .*call h323:ALIAS@127\.0\.0\.1"):
                await kiosk.call(agent.address)
            call = await kiosk.call(f"h323:3301@{agent.address}")  # any alias the certificate holds
            await asyncio.wait_for(call.connected, T)
            await call.hangup()

    run(scenario())


def test_a_caller_may_not_claim_an_alias_its_certificate_lacks(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True)
        async with agent:
            anchors = pki_dir / "ca" / "ca.cert.pem"
            ctx = pki.client_context(pki.Identity.load(pki_dir / "Murat kiosk.pem"), anchors, None)
            config = SignallingConfig("caf-agent", policy=MediaPolicy(DEFAULT_FORMATS))  # not the kiosk's alias
            session = await place_call("127.0.0.1", agent.port, config, MEDIA, ssl_context=ctx,
                                       destination=["caf-agent"], expected_alias="caf-agent")
            await wait_for(lambda: bool(agent.refused))
            refusal = agent.refused[-1]
            assert refusal.reason == "securityDenied" and "claims alias 'caf-agent'" in refusal.detail, refusal
            assert not agent.calls
            await session.close()

    run(scenario())


def test_an_agent_without_allow_list_answers_kiosks_only(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True)
        other_agent = terminal(pki_dir, "CAF agent", listen=False)
        async with agent, other_agent:
            with pytest.raises(CallFailed):
                call = await other_agent.call(agent.uri)
                await asyncio.wait_for(call.connected, T)
            await wait_for(lambda: bool(agent.refused))
            assert "role agent; this terminal answers kiosk" in agent.refused[-1].detail
        listed = terminal(pki_dir, "CAF agent", auto_answer=True, allow=["CAF agent"])  # the list decides
        async with listed, terminal(pki_dir, "CAF agent", listen=False) as caller:
            call = await caller.call(listed.uri)
            await asyncio.wait_for(call.connected, T)
            await call.hangup()

    run(scenario())


def test_old_certificates_only_when_asked(pki_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(CallError, match="holds no H.323 alias .*legacy_certificates=True"):
        terminal(pki_dir, "Old kiosk", listen=False)

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, allow=["Old kiosk"])
        old = terminal(pki_dir, "Old kiosk", listen=False, legacy_certificates=True)
        async with agent, old:
            with pytest.raises(CallFailed):  # the agent does not take alias-less callers by default
                call = await old.call(agent.uri)
                await asyncio.wait_for(call.connected, T)
            await wait_for(lambda: bool(agent.refused))
            assert "no H.323 alias" in agent.refused[-1].detail
        lenient = terminal(pki_dir, "CAF agent", auto_answer=True, allow=["Old kiosk"], legacy_certificates=True)
        async with lenient, terminal(pki_dir, "Old kiosk", listen=False, legacy_certificates=True) as old:
            call = await old.call(lenient.uri)
            await asyncio.wait_for(call.connected, T)
            await call.hangup()

    with caplog.at_level("WARNING"):
        run(scenario())
    assert any("legacy_certificates" in r.getMessage() for r in caplog.records)
