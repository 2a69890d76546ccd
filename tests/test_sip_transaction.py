"""RFC 3261 §17 transactions with time as an argument (timers A–K, RFC 6026 Accepted), and digest (RFC 8760)."""

from __future__ import annotations

import pytest

from vcore.sip.auth import (
    Credentials,
    DigestVerifier,
    authorization,
    best_challenge,
    parse_challenge,
)
from vcore.sip.errors import SipParseError
from vcore.sip.message import SipMessage, SipUri
from vcore.sip.transaction import (
    T1,
    T2,
    T4,
    TIMER_D,
    ClientTransaction,
    ServerTransaction,
    State,
)
from vcore.sip.ua import response_to


def _request(method: str = "INVITE") -> SipMessage:
    return SipMessage.request(method, SipUri("sip", "192.0.2.1", "bob"), [
        ("Via", "SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKabc"), ("Max-Forwards", "70"),
        ("From", "<sip:alice@192.0.2.2>;tag=1"), ("To", "<sip:bob@192.0.2.1>"), ("Call-ID", "c1"),
        ("CSeq", f"1 {method}")])


def _kinds(actions: list) -> list[str]:  # type: ignore[type-arg]
    return [a.kind for a in actions]


def test_invite_client_timer_a_doubles_and_timer_b_times_out() -> None:
    t = ClientTransaction(_request(), reliable=False)
    assert _kinds(t.start(0.0)) == ["send"]
    sends = []
    now = 0.0
    while t.state != State.TERMINATED:
        deadline = t.next_deadline
        assert deadline is not None
        now = deadline
        actions = t.on_timer(now)
        if "send" in _kinds(actions):
            sends.append(now)
        if "timeout" in _kinds(actions):
            assert _kinds(actions) == ["timeout", "terminated"]
            break
    # timer A: T1, 2T1, 4T1, ... until timer B = 64*T1
    assert sends[:4] == [T1, 3 * T1, 7 * T1, 15 * T1]
    assert now == 64 * T1 and len(sends) == 6


def test_invite_client_over_tcp_never_retransmits() -> None:
    t = ClientTransaction(_request(), reliable=True)
    t.start(0.0)
    assert t.next_deadline == 64 * T1
    assert _kinds(t.on_timer(64 * T1)) == ["timeout", "terminated"]


def test_invite_client_error_response_is_acked_and_absorbed() -> None:
    req = _request()
    t = ClientTransaction(req, reliable=False)
    t.start(0.0)
    assert _kinds(t.on_response(response_to(req, 180, "Ringing", to_tag="x"), 0.1)) == ["deliver"]
    assert t.next_deadline == 64 * T1  # timer A stopped, B goes on
    busy = response_to(req, 486, "Busy Here", to_tag="x")
    actions = t.on_response(busy, 0.2)
    assert _kinds(actions) == ["send", "deliver"]
    ack = actions[0].message
    assert ack is not None and ack.method == "ACK" and ack.top_via.branch == "z9hG4bKabc"
    assert ack.to.tag == "x" and ack.cseq == (1, "ACK")
    assert _kinds(t.on_response(busy, 1.0)) == ["send"]  # retransmitted 486: ACK again, not delivered
    assert t.next_deadline == pytest.approx(0.2 + TIMER_D)
    assert _kinds(t.on_timer(0.2 + TIMER_D)) == ["terminated"]


def test_invite_client_2xx_accepted_state_passes_retransmissions_up() -> None:
    req = _request()
    t = ClientTransaction(req, reliable=False)
    t.start(0.0)
    ok = response_to(req, 200, "OK", to_tag="y")
    assert _kinds(t.on_response(ok, 0.3)) == ["deliver"] and t.state == State.ACCEPTED
    assert _kinds(t.on_response(ok, 0.8)) == ["deliver"]  # the TU ACKs it again (RFC 6026)
    assert _kinds(t.on_timer(0.3 + 64 * T1)) == ["terminated"]


def test_non_invite_client_timer_e_caps_at_t2_and_k() -> None:
    req = _request("OPTIONS")
    t = ClientTransaction(req, reliable=False)
    t.start(0.0)
    times = []
    now = 0.0
    for _ in range(6):
        now = t.next_deadline or 0.0
        assert _kinds(t.on_timer(now)) == ["send"]
        times.append(now)
    assert times == [T1, 3 * T1, 7 * T1, 7 * T1 + T2, 7 * T1 + 2 * T2, 7 * T1 + 3 * T2]
    assert _kinds(t.on_response(response_to(req, 200, "OK"), now + 0.1)) == ["deliver"]
    assert t.next_deadline == pytest.approx(now + 0.1 + T4)  # timer K
    assert _kinds(t.on_timer(now + 0.1 + T4)) == ["terminated"]


def test_invite_server_error_retransmits_until_ack_then_timer_i() -> None:
    req = _request()
    s = ServerTransaction(req, reliable=False)
    assert _kinds(s.respond(response_to(req, 100, "Trying"), 0.0)) == ["send"]
    assert _kinds(s.on_request(req, 0.1)) == ["send"]  # the INVITE again: the last provisional again
    assert _kinds(s.respond(response_to(req, 486, "Busy Here", to_tag="t"), 0.2)) == ["send"]
    assert s.next_deadline == pytest.approx(0.2 + T1)  # timer G
    assert _kinds(s.on_timer(0.2 + T1)) == ["send"]
    assert s.next_deadline == pytest.approx(0.2 + T1 + 2 * T1)
    ack = SipMessage.request("ACK", req.uri or SipUri("sip", "x"), list(req.headers))
    ack.set("CSeq", "1 ACK")
    assert s.on_request(ack, 1.0) == [] and s.state == State.CONFIRMED
    assert s.next_deadline == pytest.approx(1.0 + T4)  # timer I
    assert _kinds(s.on_timer(1.0 + T4)) == ["terminated"]


def test_invite_server_2xx_without_ack_times_out_timer_l() -> None:
    req = _request()
    s = ServerTransaction(req, reliable=False)
    s.respond(response_to(req, 200, "OK", to_tag="t"), 0.0)
    sends = 0
    while True:
        now = s.next_deadline
        assert now is not None
        actions = s.on_timer(now)
        if "timeout" in _kinds(actions):
            assert _kinds(actions) == ["timeout", "terminated"] and now == 64 * T1
            break
        sends += 1
    assert sends >= 8  # T1, 2T1, 4T1, T2, T2, ... until timer L


def test_invite_server_2xx_stops_on_ack() -> None:
    req = _request()
    s = ServerTransaction(req, reliable=False)
    s.respond(response_to(req, 200, "OK", to_tag="t"), 0.0)
    assert _kinds(s.ack_received()) == ["terminated"] and s.next_deadline is None


def test_non_invite_server_timer_j_and_retransmission() -> None:
    req = _request("BYE")
    s = ServerTransaction(req, reliable=False)
    assert s.on_request(req, 0.0) == []  # nothing to repeat yet
    s.respond(response_to(req, 200, "OK"), 0.1)
    assert _kinds(s.on_request(req, 0.5)) == ["send"]
    assert _kinds(s.on_timer(0.1 + 64 * T1)) == ["terminated"]


# ------------------------------------------------------------------ digest

def test_rfc2617_md5_vector() -> None:
    """RFC 2617 §3.5 (the example RFC 7616 §3.9.1 repeats with MD5)."""
    c = parse_challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    value = authorization(c, Credentials("Mufasa", "Circle Of Life"), "GET", "/dir/index.html", 1,
                          cnonce="0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in value and "qop=auth" in value and "nc=00000001" in value


def test_rfc7616_sha256_vector() -> None:
    c = parse_challenge('Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
                        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
                        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
    value = authorization(c, Credentials("Mufasa", "Circle of Life"), "GET", "/dir/index.html", 1,
                          cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    assert 'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"' in value


def test_best_challenge_prefers_sha256_and_refuses_unknown() -> None:
    c = best_challenge(['Digest realm="r", nonce="n1", algorithm=MD5',
                        'Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth"',
                        'Digest realm="r", nonce="n3", algorithm=SHA-999'])
    assert c.algorithm == "SHA-256" and c.nonce == "n2"
    with pytest.raises(SipParseError, match="not supported"):
        parse_challenge('Digest realm="r", nonce="n", algorithm=SHA-999')
    with pytest.raises(SipParseError, match="only qop=auth"):
        parse_challenge('Digest realm="r", nonce="n", qop="auth-int"')
    with pytest.raises(SipParseError, match="not Digest"):
        parse_challenge('Basic realm="r"')


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_verifier_accepts_the_right_password_once(algorithm: str) -> None:
    v = DigestVerifier("vcore.test", {"kiosk": "s3cret"}, algorithm=algorithm)
    c = parse_challenge(v.challenge(now=1000.0))
    good = authorization(c, Credentials("kiosk", "s3cret"), "REGISTER", "sip:vcore.test", 1)
    assert v.verify(good, "REGISTER", now=1001.0) == "kiosk"
    assert v.verify(good, "REGISTER", now=1002.0) is None  # replayed nonce count
    assert v.verify(authorization(c, Credentials("kiosk", "wrong"), "REGISTER", "sip:vcore.test", 2),
                    "REGISTER", now=1002.0) is None
    late = authorization(c, Credentials("kiosk", "s3cret"), "REGISTER", "sip:vcore.test", 3)
    assert v.verify(late, "REGISTER", now=1000.0 + 301) is None  # stale nonce
    assert v.verify(late, "INVITE", now=1003.0) is None  # another method
