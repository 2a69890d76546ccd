"""Revocation by default and the CRL's lifecycle (issue 14, finding 7; issue 13's certificate items).

Before: revocation was off unless ``crl=`` was passed (nobody passed it); with it on, a CRL past its
nextUpdate made every call fail with only ``tls-failure``, the station started without a word, a running
station read its CRL once, and nothing refreshed the CRL but a revocation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from vcore import pki
from vcore.call import CallFailed
from vcore.revocation import CrlWatch, find_crl, read_crl

from .call_helpers import run, terminal, until, wait_for

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A fresh CA per test (these tests revoke and rewrite its CRL)."""
    ca = pki.CertificateAuthority.init(tmp_path / "ca", "Office CA")
    ca.issue("Murat kiosk", role="kiosk").save(tmp_path / "Murat kiosk.pem")
    ca.issue("CAF agent", role="agent").save(tmp_path / "CAF agent.pem")
    pki.CertificateAuthority.init(tmp_path / "other", "Someone else's CA")
    return tmp_path


def _write_crl(ca_dir: Path, *, last: dt.datetime, next_: dt.datetime, revoked: tuple[int, ...] = (),
               out: Path | None = None) -> Path:
    """A CRL with chosen dates, signed by the CA in ``ca_dir`` (the CA itself only writes current ones)."""
    key = serialization.load_pem_private_key((ca_dir / "ca.key.pem").read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((ca_dir / "ca.cert.pem").read_bytes())
    builder = x509.CertificateRevocationListBuilder().issuer_name(cert.subject).last_update(last).next_update(next_)
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(last).build())
    path = out or ca_dir / "crl.pem"
    path.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))  # type: ignore[arg-type]
    return path


def _expire(ca_dir: Path) -> None:
    _write_crl(ca_dir, last=NOW - dt.timedelta(days=40), next_=NOW - dt.timedelta(days=10))


async def _short_call(kiosk: object, agent: object) -> None:
    call = await kiosk.call(f"h323:caf-agent@{agent.address}")  # type: ignore[attr-defined]
    await until(call, "connected")
    await call.hangup()


def test_revocation_is_checked_by_default(base: Path) -> None:
    """The finding: without crl= nothing was checked. Now the crl.pem next to the trust anchor is."""
    pki.CertificateAuthority.load(base / "ca").revoke("Murat kiosk")

    async def scenario() -> None:
        agent = terminal(base, "CAF agent", auto_answer=True)  # no crl= given
        kiosk = terminal(base, "Murat kiosk", listen=False, crl=None)  # the revoked side does not check
        async with agent, kiosk:
            with pytest.raises(CallFailed, match="revoked|certificate was probably refused") as info:
                await kiosk.call(f"h323:caf-agent@{agent.address}")  # TLS 1.3: the alert may be lost in the close
            assert info.value.reason == "tls-failure"
            await wait_for(lambda: agent.refused)
            assert "certificate revoked" in agent.refused[-1].detail

    run(scenario())


def test_turning_revocation_off_is_explicit_and_logged(base: Path, caplog: pytest.LogCaptureFixture) -> None:
    (base / "ca" / "crl.pem").unlink()
    with pytest.raises(pki.PkiError, match="no CRL found .*crl.pem.*--no-crl"):
        terminal(base, "CAF agent")
    with caplog.at_level(logging.WARNING, logger="vcore.revocation"):
        terminal(base, "CAF agent", crl=None)
    assert "revocation checking off" in caplog.text


def test_an_expired_crl_is_a_clear_error_at_start(base: Path) -> None:
    _expire(base / "ca")
    with pytest.raises(pki.PkiError, match=r"expired on .* every call is refused.*vcore pki crl"):
        terminal(base, "CAF agent", auto_answer=True)


def test_bad_crl_files_are_refused(base: Path) -> None:
    anchors = [x509.load_pem_x509_certificate((base / "ca" / "ca.cert.pem").read_bytes())]
    junk = base / "junk.pem"
    junk.write_bytes(b"-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
    with pytest.raises(pki.PkiError, match="is not a certificate revocation list"):
        read_crl(junk, anchors)
    with pytest.raises(pki.PkiError, match="cannot read the CRL"):
        read_crl(base / "absent.pem", anchors)
    with pytest.raises(pki.PkiError, match="not signed by a trust anchor"):
        read_crl(base / "other" / "crl.pem", anchors)
    with pytest.raises(pki.PkiError, match="not signed by a trust anchor"):
        terminal(base, "CAF agent", crl=base / "other" / "crl.pem")
    assert find_crl([base / "ca" / "ca.cert.pem"]) == base / "ca" / "crl.pem"
    assert find_crl([base / "nowhere" / "ca.pem"]) is None


def test_a_running_station_takes_a_new_crl(base: Path) -> None:
    """A station on all day reads the CRL again when the file changes: a kiosk revoked at noon is refused."""
    async def scenario() -> None:
        agent = terminal(base, "CAF agent", auto_answer=True)
        agent.crl_poll_interval = 0.05
        kiosk = terminal(base, "Murat kiosk", listen=False)
        async with agent, kiosk:
            await _short_call(kiosk, agent)
            pki.CertificateAuthority.load(base / "ca").revoke("Murat kiosk")
            await asyncio.sleep(0.3)
            with pytest.raises(CallFailed, match="revoked|certificate was probably refused"):
                await kiosk.call(f"h323:caf-agent@{agent.address}")
            await wait_for(lambda: agent.refused)
            assert "certificate revoked" in agent.refused[-1].detail

    run(scenario())


def test_a_crl_expiring_while_running_then_refreshed(base: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Expiry mid-day: a clear reason on the caller, an error in the log; a refreshed file heals without restart."""
    _write_crl(base / "ca", last=NOW - dt.timedelta(days=1), next_=dt.datetime.now(dt.timezone.utc)
               + dt.timedelta(seconds=1.5))

    async def scenario() -> None:
        with caplog.at_level(logging.WARNING, logger="vcore.revocation"):
            kiosk = terminal(base, "Murat kiosk", listen=False)
        assert "expires on" in caplog.text  # the last-week warning, at start
        agent = terminal(base, "CAF agent", auto_answer=True, crl=None)
        async with agent, kiosk:
            await asyncio.sleep(2.0)
            with caplog.at_level(logging.ERROR, logger="vcore.revocation"):
                with pytest.raises(CallFailed, match="expired on") as info:
                    await kiosk.call(f"h323:caf-agent@{agent.address}")
            assert info.value.reason == "crl-expired"
            assert "every call is refused" in caplog.text
            assert not agent.calls and not agent.refused  # refused before dialling
            await asyncio.sleep(0.05)
            pki.CertificateAuthority.load(base / "ca").refresh_crl(30)
            await _short_call(kiosk, agent)

    run(scenario())


def test_a_broken_replacement_keeps_the_previous_crl(base: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca = pki.CertificateAuthority.load(base / "ca")
    ca.revoke("Murat kiosk")
    anchors = [ca.certificate]
    watch = CrlWatch(base / "ca" / "crl.pem", anchors)
    revoked = watch.state.revoked
    assert len(revoked) == 1
    with caplog.at_level(logging.ERROR, logger="vcore.revocation"):
        (base / "ca" / "crl.pem").write_bytes(b"half a file")
        assert watch.poll() is False
        assert watch.poll() is False  # logged once per change
        shutil.copy(base / "other" / "crl.pem", base / "ca" / "crl.pem")
        assert watch.poll() is False
        _write_crl(base / "ca", last=NOW - dt.timedelta(days=90), next_=NOW + dt.timedelta(days=9))
        assert watch.poll() is False  # an older CRL would un-revoke
        (base / "ca" / "crl.pem").unlink()
        assert watch.poll() is False
    assert watch.state.revoked == revoked
    assert caplog.text.count("keeping the CRL read before") == 2
    assert "older than the CRL read before" in caplog.text and "is gone" in caplog.text
    ca.refresh_crl()
    assert watch.poll() is True and watch.state.revoked == revoked


def test_watch_reports_by_time(base: Path, caplog: pytest.LogCaptureFixture) -> None:
    nxt = NOW + dt.timedelta(days=3)
    _write_crl(base / "ca", last=NOW, next_=nxt)
    watch = CrlWatch(base / "ca" / "crl.pem", [pki.CertificateAuthority.load(base / "ca").certificate])
    with caplog.at_level(logging.WARNING, logger="vcore.revocation"):
        assert watch.report(NOW) is None
        assert watch.report(NOW + dt.timedelta(hours=1)) is None  # the warning once a day
        assert caplog.text.count("expires on") == 1
        assert watch.report(NOW + dt.timedelta(days=1, hours=1)) is None
        assert caplog.text.count("expires on") == 2
        problem = watch.report(nxt)
        assert problem is not None and "expired on" in problem
        watch.report(nxt + dt.timedelta(minutes=10))
        assert caplog.text.count("so every call is refused") == 1  # errors once an hour
    assert not watch.expires_within(NOW - dt.timedelta(days=30))


def test_pki_lifecycle_commands(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir = str(base / "ca")
    ca = pki.CertificateAuthority.load(ca_dir)
    _expire(base / "ca")
    assert pki.main(["crl", ca_dir, "--days", "10"]) == 0
    out = capsys.readouterr().out
    assert "valid until" in out and "copy it to every station" in out
    nxt = ca.crl().next_update_utc
    assert nxt is not None and dt.timedelta(days=9) < nxt - NOW < dt.timedelta(days=11)
    for bad in (["crl", ca_dir, "--days", "0"], ["crl", ca_dir, "--days", "400"],
                ["issue", ca_dir, "x", "--role", "kiosk", "--days", "-5"]):
        assert pki.main(bad) == 2  # argparse: the usage, then one "error:" line
        err = capsys.readouterr().err
        assert "error: argument --days" in err and "out of range" in err and "Traceback" not in err
    with pytest.raises(pki.PkiError, match="1 to 365 days"):
        ca.refresh_crl(0)
    _expire(base / "ca")
    short = ca.issue("Short kiosk", days=1, role="kiosk")  # issuing refreshes the CRL too
    assert not read_crl(base / "ca" / "crl.pem", [ca.certificate]).expired(NOW)
    rows = {r.name: r for r in ca.certificates()}
    assert rows["Short kiosk"].state() == "valid"
    assert rows["Short kiosk"].state(NOW + dt.timedelta(days=2)) == "expired"
    ca.revoke("Short kiosk")
    assert short.certificate.serial_number in read_crl(base / "ca" / "crl.pem", [ca.certificate]).revoked
    assert {r.name: r for r in ca.certificates()}["Short kiosk"].state(NOW + dt.timedelta(days=2)) == "revoked"
    assert pki.main(["list", ca_dir]) == 0
    out = capsys.readouterr().out
    assert "revoked" in out and "CRL " in out and "valid until" in out
    _expire(base / "ca")
    assert pki.main(["list", ca_dir]) == 0
    assert "EXPIRED" in capsys.readouterr().out


def test_cli_crl_flags(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vcore.call_cli import call_main

    sec = ["--identity", str(base / "Murat kiosk.pem"), "--trust", str(base / "ca" / "ca.cert.pem")]
    assert call_main([*sec, "--crl", str(base / "ca" / "crl.pem"), "--no-crl", "h323:caf-agent@192.0.2.1"]) == 2
    assert capsys.readouterr().err == "error: give --crl or --no-crl, not both\n"
    _expire(base / "ca")
    assert call_main([*sec, "h323:caf-agent@192.0.2.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the CRL") and "Traceback" not in err and err.count("\n") == 1


def _identity_valid(base: Path, name: str, not_before: dt.datetime, not_after: dt.datetime) -> Path:
    """A kiosk certificate with chosen dates (the CA only issues current ones)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = serialization.load_pem_private_key((base / "ca" / "ca.key.pem").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((base / "ca" / "ca.cert.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                                     x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "kiosk")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier("h323:x")]), critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    path = base / f"{name}.pem"
    pki.Identity(key, (cert, ca_cert)).save(path)
    return path


def test_own_certificate_expiry_is_said_at_start(base: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 13: a station whose certificate expired started and failed every call with only tls-failure."""
    _identity_valid(base, "Old kiosk", NOW - dt.timedelta(days=400), NOW - dt.timedelta(days=1))
    with pytest.raises(pki.PkiError, match=r"expired on .* every peer refuses it: issue a new one"):
        terminal(base, "Old kiosk")
    _identity_valid(base, "Future kiosk", NOW + dt.timedelta(days=2), NOW + dt.timedelta(days=400))
    with pytest.raises(pki.PkiError, match="not valid before .* check this machine's clock"):
        terminal(base, "Future kiosk")
    _identity_valid(base, "Late kiosk", NOW - dt.timedelta(days=300), NOW + dt.timedelta(days=10))
    with caplog.at_level(logging.WARNING, logger="vcore.call.terminal"):
        terminal(base, "Late kiosk")
    assert "expires on" in caplog.text
    ident = pki.Identity.load(base / "CAF agent.pem")  # issued by the fixture, maybe minutes after NOW was read
    assert pki.validity_problem(ident, dt.datetime.now(dt.timezone.utc)) is None
