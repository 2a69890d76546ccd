"""SRTP benchmarks: vcore (both kernel twins) against pylibsrtp (libsrtp 2.x + OpenSSL) and a
naive per-packet use of ``cryptography``, 1,200-byte RTP packets, in the same run.

pytest-benchmark (each call handles BATCH packets, so divide by BATCH for per-packet time)::

    python -m pytest benchmarks/bench_srtp.py --benchmark-only

or a per-packet table with ratios to pylibsrtp's AES_CM_128_HMAC_SHA1_80 protect::

    PYTHONPATH=src python benchmarks/bench_srtp.py
"""

from __future__ import annotations

import hmac
import os
import struct
import sys
import timeit
from typing import Any, Callable

import pylibsrtp
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from vcore import SrtpSession
from vcore._speedups import load_twin
from vcore.srtp import SRTP_SUITES, derive_session_keys

PACKET_SIZE = 1200
BATCH = 256
SSRC = 0x12345678
P = pylibsrtp.Policy
PROFILES = {"AES_CM_128_HMAC_SHA1_80": P.SRTP_PROFILE_AES128_CM_SHA1_80, "AEAD_AES_128_GCM": P.SRTP_PROFILE_AEAD_AES_128_GCM}


def _packets(n: int, start: int = 1000) -> list[bytes]:
    pay = os.urandom(PACKET_SIZE - 12)
    return [struct.pack("!BBHII", 0x80, 96, (start + i) & 0xFFFF, i * 3000, SSRC) + pay for i in range(n)]


PACKETS = _packets(BATCH)


def _key(suite: str) -> bytes:
    s = SRTP_SUITES[suite]
    return bytes(range(s.master_key_len + s.master_salt_len))


class _Naive:
    """AES_CM_128_HMAC_SHA1_80 protect the obvious way: a fresh CTR context and HMAC per packet."""

    def __init__(self, key: bytes) -> None:
        keys = derive_session_keys("AES_CM_128_HMAC_SHA1_80", key[:16], key[16:])
        self.k, self.a, self.s = keys.srtp_key, keys.srtp_auth, int.from_bytes(keys.srtp_salt, "big")

    def protect(self, pkt: bytes) -> bytes:
        seq = int.from_bytes(pkt[2:4], "big")
        iv = ((self.s << 16) ^ (SSRC << 64) ^ (seq << 16)).to_bytes(16, "big")
        body = pkt[:12] + Cipher(algorithms.AES(self.k), modes.CTR(iv)).encryptor().update(pkt[12:])
        return body + hmac.digest(self.a, body + b"\0\0\0\0", "sha1")[:10]


def _sender(impl: str, suite: str) -> Any:
    key = _key(suite)
    if impl == "pylibsrtp":
        return pylibsrtp.Session(P(key=key, ssrc_type=P.SSRC_ANY_OUTBOUND, srtp_profile=PROFILES[suite]))
    if impl == "naive":
        return _Naive(key)
    return SrtpSession(suite, key, kernel=load_twin("_fastpath_srtp", "c" if impl == "vcore-c" else "py"))


def _receiver(impl: str, suite: str) -> Any:
    key = _key(suite)
    if impl == "pylibsrtp":
        return pylibsrtp.Session(P(key=key, ssrc_type=P.SSRC_ANY_INBOUND, srtp_profile=PROFILES[suite]))
    return SrtpSession(suite, key, kernel=load_twin("_fastpath_srtp", "c" if impl == "vcore-c" else "py"))


PROTECTED = {s: [_sender("pylibsrtp", s).protect(p) for p in PACKETS] for s in PROFILES}


def _loop(f: Callable[[bytes], bytes], data: list[bytes]) -> None:
    for p in data:
        f(p)


IMPLS = ["pylibsrtp", "vcore-c", "vcore-py"]


@pytest.mark.parametrize("suite", list(PROFILES))
@pytest.mark.parametrize("impl", [*IMPLS, "naive"])
def test_protect(benchmark: Any, impl: str, suite: str) -> None:
    if impl == "naive" and suite != "AES_CM_128_HMAC_SHA1_80":
        pytest.skip("the naive baseline is AES-CM only")
    benchmark.extra_info["packets_per_call"] = BATCH
    benchmark.pedantic(lambda s: _loop(s.protect, PACKETS), setup=lambda: ((_sender(impl, suite),), {}), rounds=40)


@pytest.mark.parametrize("suite", list(PROFILES))
@pytest.mark.parametrize("impl", IMPLS)
def test_unprotect(benchmark: Any, impl: str, suite: str) -> None:
    benchmark.extra_info["packets_per_call"] = BATCH
    data = PROTECTED[suite]
    benchmark.pedantic(lambda s: _loop(s.unprotect, data), setup=lambda: ((_receiver(impl, suite),), {}), rounds=40)


@pytest.mark.parametrize("suite", list(PROFILES))
@pytest.mark.parametrize("impl", ["vcore-c", "vcore-py"])
def test_protect_many(benchmark: Any, impl: str, suite: str) -> None:
    benchmark.extra_info["packets_per_call"] = BATCH
    batches = [PACKETS[i : i + 32] for i in range(0, BATCH, 32)]

    def run(s: SrtpSession) -> None:
        for b in batches:
            s.protect_many(b)

    benchmark.pedantic(run, setup=lambda: ((_sender(impl, suite),), {}), rounds=40)


# -- table mode ------------------------------------------------------------------------


def _runner(make: Callable[[], Any], op: str, data: list[bytes], batch: int) -> Callable[[], float]:
    """One timed pass over ``data`` with a fresh session; returns µs per packet."""

    def once() -> float:
        f = getattr(make(), op)
        if batch:
            chunks = [data[i : i + batch] for i in range(0, len(data), batch)]

            def run() -> None:
                for c in chunks:
                    f(c)

        else:

            def run() -> None:
                for p in data:
                    f(p)

        return timeit.timeit(run, number=1) / len(data) * 1e6

    return once


def main(repeat: int = 21, n: int = 4096) -> None:
    """Every configuration is timed once per round, round-robin, best round kept: a busy
    machine then slows all rows alike and the ratios stay meaningful."""
    data = _packets(n)
    cases: list[tuple[str, str, str, Callable[[], float]]] = []
    for suite in PROFILES:
        prot = [_sender("pylibsrtp", suite).protect(p) for p in data]
        for impl in [*IMPLS, "naive"]:
            if impl == "naive" and suite != "AES_CM_128_HMAC_SHA1_80":
                continue

            def snd(impl: str = impl, suite: str = suite) -> Any:
                return _sender(impl, suite)

            def rcv(impl: str = impl, suite: str = suite) -> Any:
                return _receiver(impl, suite)

            cases.append((suite, impl, "protect", _runner(snd, "protect", data, 0)))
            if impl != "naive":
                cases.append((suite, impl, "unprotect", _runner(rcv, "unprotect", prot, 0)))
            if impl.startswith("vcore"):
                cases.append((suite, impl, "protect_many(32)", _runner(snd, "protect_many", data, 32)))
    best = [float("inf")] * len(cases)
    for _ in range(repeat):
        for i, case in enumerate(cases):
            best[i] = min(best[i], case[3]())
    rows = [(c[0], c[1], c[2], b) for c, b in zip(cases, best)]
    ref = next(r[3] for r in rows if r[:3] == ("AES_CM_128_HMAC_SHA1_80", "pylibsrtp", "protect"))
    ref_un = next(r[3] for r in rows if r[:3] == ("AES_CM_128_HMAC_SHA1_80", "pylibsrtp", "unprotect"))
    print("| suite | implementation | operation | µs/packet | ratio |")
    print("|---|---|---|---:|---:|")
    for suite, impl, op, us in rows:
        base = ref_un if op == "unprotect" else ref
        print(f"| {suite} | {impl} | {op} | {us:.3f} | {us / base:.2f} |")
    print(
        f"\nratio: to pylibsrtp's AES_CM_128_HMAC_SHA1_80 protect (unprotect rows: to its unprotect); "
        f"{n} packets of {PACKET_SIZE} bytes per pass, best of {repeat} round-robin passes"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
