"""vcore.pki: the installation CA, terminal certificates, revocation, TLS contexts and the CLI."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vcore import pki


@pytest.fixture()
def ca(tmp_path: Path) -> pki.CertificateAuthority:
    return pki.CertificateAuthority.init(tmp_path / "ca", "Office CA")


def test_init_layout_and_ca_certificate(ca: pki.CertificateAuthority) -> None:
    d = ca.directory
    assert {p.name for p in d.iterdir()} == {"ca.key.pem", "ca.cert.pem", "crl.pem", "issued", "revoked.txt"}
    assert stat.S_IMODE((d / "ca.key.pem").stat().st_mode) == 0o600
    cert = ca.certificate
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.name == "Office CA"
    assert list(ca.crl()) == []
    with pytest.raises(pki.PkiError, match="already holds a CA"):
        pki.CertificateAuthority.init(d, "again")


def test_issue_terminal_certificate(ca: pki.CertificateAuthority, tmp_path: Path) -> None:
    identity = ca.issue("kiosk-17")
    cert = identity.certificate
    assert identity.name == "kiosk-17"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kiosk-17"
    assert cert.issuer == ca.certificate.subject
    cert.verify_directly_issued_by(ca.certificate)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    path = tmp_path / "kiosk.pem"
    identity.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = pki.Identity.load(path)
    assert loaded.certificate == cert and loaded.chain[1] == ca.certificate
    assert "PRIVATE" not in repr(loaded) and repr(loaded).startswith("Identity(name='kiosk-17'")


def test_list_and_revoke(ca: pki.CertificateAuthority) -> None:
    a = ca.issue("agent-1")
    k = ca.issue("kiosk-1")
    assert [(r.name, r.revoked) for r in ca.certificates()] == [("agent-1", False), ("kiosk-1", False)]
    assert ca.revoke("kiosk-1") == [k.certificate.serial_number]
    assert [(r.name, r.revoked) for r in ca.certificates()] == [("agent-1", False), ("kiosk-1", True)]
    assert ca.revoke(f"{a.certificate.serial_number:x}") == [a.certificate.serial_number]
    crl = ca.crl()
    assert {r.serial_number for r in crl} == {a.certificate.serial_number, k.certificate.serial_number}
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    with pytest.raises(pki.PkiError, match="no certificate named or numbered 'nobody'"):
        ca.revoke("nobody")
    # a reloaded CA sees the same state
    again = pki.CertificateAuthority.load(ca.directory)
    assert [r.revoked for r in again.certificates()] == [True, True]


def test_bad_inputs(tmp_path: Path, ca: pki.CertificateAuthority) -> None:
    with pytest.raises(pki.PkiError, match="holds no CA"):
        pki.CertificateAuthority.load(tmp_path / "nothing")
    with pytest.raises(pki.PkiError, match="cannot read identity"):
        pki.Identity.load(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not pem")
    with pytest.raises(pki.PkiError, match="is not a PEM key and certificate chain"):
        pki.Identity.load(tmp_path / "junk.pem")
    a, b = ca.issue("a"), ca.issue("b")
    mixed = pki.Identity(a.private_key, b.chain)
    mixed.save(tmp_path / "mixed.pem")
    with pytest.raises(pki.PkiError, match="does not match the private key"):
        pki.Identity.load(tmp_path / "mixed.pem")
    with pytest.raises(pki.PkiError, match="is not allowed"):
        ca.issue("a/b")
    with pytest.raises(pki.PkiError, match="cannot read CRL"):
        pki.server_context(a, [ca.certificate], tmp_path / "nope.pem")


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> tuple[str | None, str | None]:
    """Run one TLS handshake over a socketpair; returns (server's view of client CN, error text)."""
    left, right = socket.socketpair()
    result: dict[str, str | None] = {"name": None, "error": None}

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(left, server_side=True) as tls:
                result["name"] = pki.peer_common_name(tls)
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            result["error"] = str(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(right) as tls:
            tls.recv(2)
    except (ssl.SSLError, OSError):
        pass
    thread.join(10)
    return result["name"], result["error"]


def test_mutual_tls_contexts(ca: pki.CertificateAuthority, tmp_path: Path) -> None:
    agent, kiosk, gone = ca.issue("agent-1"), ca.issue("kiosk-1"), ca.issue("kiosk-2")
    ca.revoke("kiosk-2")
    other = pki.CertificateAuthority.init(tmp_path / "other", "Other").issue("kiosk-1")
    server = pki.server_context(agent, [ca.certificate], ca.crl_path)
    name, error = _handshake(server, pki.client_context(kiosk, ca.cert_path, ca.crl_path))
    assert (name, error) == ("kiosk-1", None)
    for bad in (other, gone):
        name, error = _handshake(server, pki.client_context(bad, [ca.certificate]))
        assert name is None and error is not None and "CERTIFICATE_VERIFY_FAILED" in error
    assert pki.check_allowed("kiosk-1", None)
    assert pki.check_allowed("kiosk-1", ["kiosk-1"]) and not pki.check_allowed("kiosk-9", ["kiosk-1"])
    assert not pki.check_allowed(None, ["kiosk-1"])


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "ca")
    assert pki.main(["init", d, "--name", "Test CA"]) == 0
    assert pki.main(["issue", d, "kiosk-1", "--role", "kiosk"]) == 0
    assert pki.main(["issue", d, "agent-1", "--role", "agent", "--alias", "caf-agent", "--alias", "3301",
                     "--out", str(tmp_path / "agent.pem")]) == 0
    assert pki.main(["issue", d, "no-role"]) == 2  # the role is required on the command line
    assert pki.Identity.load(tmp_path / "ca" / "kiosk-1.pem").name == "kiosk-1"
    agent = pki.Identity.load(tmp_path / "agent.pem")
    assert (agent.name, agent.aliases, agent.role) == ("agent-1", ("caf-agent", "3301"), "agent")
    kiosk = pki.Identity.load(tmp_path / "ca" / "kiosk-1.pem")
    assert (kiosk.aliases, kiosk.role) == (("kiosk-1",), "kiosk")
    assert pki.main(["revoke", d, "kiosk-1"]) == 0
    capsys.readouterr()
    assert pki.main(["list", d]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split()[2:] for r in rows[:-1]] == [["valid", "agent", "agent-1", "(caf-agent,", "3301)"],
                                                  ["revoked", "kiosk", "kiosk-1", "(kiosk-1)"]]
    assert rows[-1].startswith("CRL ") and "valid until" in rows[-1]
    assert pki.main(["list", str(tmp_path / "none")]) == 1
    assert "holds no CA" in capsys.readouterr().err
    assert pki.main(["init", d]) == 1
    assert pki.main(["--help"]) == 0 and "init" in capsys.readouterr().out
    assert pki.main(["frobnicate"]) == 2


def test_module_entry_point(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(Path(pki.__file__).parents[1]))
    done = subprocess.run([sys.executable, "-m", "vcore.pki", "init", str(tmp_path / "ca")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "created CA 'vcore CA'" in done.stdout
