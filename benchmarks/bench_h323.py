"""H.323 signalling costs: PER encode/decode of a Setup with Fast Connect proposals, Q.931/TPKT framing.

Run: python -m pytest benchmarks/bench_h323.py --benchmark-only
(pure Python on pycrate: there is no compiled twin; signalling is a few messages per call.)
"""

from __future__ import annotations

from typing import Any

from vcore.h323 import asn1
from vcore.h323.fast_connect import MediaPolicy, decode_proposals, encode_proposals, make_offer
from vcore.h323.messages import DEFAULT_FORMATS, Address, parse_user_information, setup_uuie, user_information
from vcore.h323.q931 import MessageType, Q931Message, bearer_capability_ie, user_user_ie
from vcore.h323.tpkt import TpktDecoder, encode_tpkt

MEDIA = {1: (Address("127.0.0.1", 5000), Address("127.0.0.1", 5001)),
         2: (Address("127.0.0.1", 5002), Address("127.0.0.1", 5003))}


def _setup() -> Any:
    offer = make_offer(MediaPolicy(DEFAULT_FORMATS), MEDIA)  # 5 formats x 2 suites x 2 directions = 20 OLCs
    return user_information("setup", setup_uuie(call_id=bytes(16), conference_id=bytes(16), source_aliases=["k"],
                                                 fast_start=encode_proposals(offer.proposals)))


def test_encode_setup_with_fast_start(benchmark: Any) -> None:
    value = _setup()
    data = benchmark(asn1.encode_uuie, value)
    assert len(data) > 1000


def test_decode_setup_with_fast_start(benchmark: Any) -> None:
    data = asn1.encode_uuie(_setup())

    def decode() -> int:
        info = parse_user_information(data)
        return len(decode_proposals(info.fast_start or ()))

    assert benchmark(decode) == 20


def test_q931_tpkt_roundtrip(benchmark: Any) -> None:
    uuie = asn1.encode_uuie(_setup())
    wire = encode_tpkt(Q931Message(MessageType.SETUP, 1, False, (bearer_capability_ie(), user_user_ie(uuie))).encode())

    def roundtrip() -> int:
        (payload,) = TpktDecoder().feed(wire)
        return len(Q931Message.parse(payload).encode())

    assert benchmark(roundtrip) == len(wire) - 4
