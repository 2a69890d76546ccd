"""SRTP benchmarks: vcore (both kernel twins) against pylibsrtp (libsrtp 2.x + OpenSSL) and a
naive per-packet use of ``cryptography``, 1,200-byte RTP packets, in the same run.

pytest-benchmark (each call handles BATCH packets, so divide by BATCH for per-packet time)::

    python -m pytest benchmarks/bench_srtp.py --benchmark-only

or a per-packet table with ratios to pylibsrtp's AES_CM_128_HMAC_SHA1_80 protect::

    python benchmarks/bench_srtp.py
"""

from __future__ import annotations

import hmac
import sys
import timeit
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from vcore.bench import workloads as wl
from vcore.srtp import derive_session_keys

PACKET_SIZE = wl.SRTP_PACKET_SIZE
BATCH = 256
SSRC = wl.SRTP_SSRC
PROFILES = ("AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM")


def _packets(n: int, start: int = 1000) -> list[bytes]:
    return wl.rtp_packets(n, PACKET_SIZE, start, SSRC)


PACKETS = _packets(BATCH)


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
    if impl == "naive":
        return _Naive(wl.srtp_test_key(suite))
    return wl.srtp_session(impl, suite, outbound=True)


IMPLS = list(wl.SRTP_IMPLS)


def _bench(benchmark: Any, w: wl.Workload) -> None:
    """The shared workload (vcore.bench), a fresh session per round (untimed)."""
    benchmark.extra_info["packets_per_call"] = w.items

    def setup() -> None:
        assert w.prepare is not None
        w.prepare()

    benchmark.pedantic(w.run, setup=setup, rounds=40)


@pytest.mark.parametrize("suite", PROFILES)
@pytest.mark.parametrize("impl", [*IMPLS, "naive"])
def test_protect(benchmark: Any, impl: str, suite: str) -> None:
    if impl == "naive":
        if suite != "AES_CM_128_HMAC_SHA1_80":
            pytest.skip("the naive baseline is AES-CM only")
        benchmark.extra_info["packets_per_call"] = BATCH
        benchmark.pedantic(lambda s: _loop(s.protect, PACKETS), setup=lambda: ((_sender(impl, suite),), {}),
                           rounds=40)
        return
    _bench(benchmark, wl.srtp_workload(impl, suite, "protect", PACKETS))


@pytest.mark.parametrize("suite", PROFILES)
@pytest.mark.parametrize("impl", IMPLS)
def test_unprotect(benchmark: Any, impl: str, suite: str) -> None:
    _bench(benchmark, wl.srtp_workload(impl, suite, "unprotect", PACKETS))


@pytest.mark.parametrize("suite", PROFILES)
@pytest.mark.parametrize("impl", ["vcore-c", "vcore-py"])
def test_protect_many(benchmark: Any, impl: str, suite: str) -> None:
    _bench(benchmark, wl.srtp_workload(impl, suite, "protect_many", PACKETS, batch=32))


def _loop(f: Callable[[bytes], bytes], data: list[bytes]) -> None:
    for p in data:
        f(p)


# -- table mode ------------------------------------------------------------------------


def _runner(w: wl.Workload) -> Callable[[], float]:
    """One timed pass of a shared workload with a fresh session; returns µs per packet."""

    def once() -> float:
        if w.prepare is not None:
            w.prepare()
        return timeit.timeit(w.run, number=1) / w.items * 1e6

    return once


def _naive_runner(data: list[bytes]) -> Callable[[], float]:
    def once() -> float:
        s = _Naive(wl.srtp_test_key("AES_CM_128_HMAC_SHA1_80"))
        return timeit.timeit(lambda: _loop(s.protect, data), number=1) / len(data) * 1e6

    return once


def main(repeat: int = 21, n: int = 4096) -> None:
    """Every configuration is timed once per round, round-robin, best round kept: a busy
    machine then slows all rows alike and the ratios stay meaningful."""
    data = _packets(n)
    cases: list[tuple[str, str, str, Callable[[], float]]] = []
    for suite in PROFILES:
        for impl in [*IMPLS, "naive"]:
            if impl == "naive":
                if suite == "AES_CM_128_HMAC_SHA1_80":
                    cases.append((suite, impl, "protect", _naive_runner(data)))
                continue
            cases.append((suite, impl, "protect", _runner(wl.srtp_workload(impl, suite, "protect", data))))
            cases.append((suite, impl, "unprotect", _runner(wl.srtp_workload(impl, suite, "unprotect", data))))
            if impl.startswith("vcore"):
                cases.append((suite, impl, "protect_many(32)",
                              _runner(wl.srtp_workload(impl, suite, "protect_many", data, batch=32))))
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
