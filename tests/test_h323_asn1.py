"""ASN.1 PER: byte-exact regression vectors for vcore's fix of pycrate's SEQUENCE extension-addition alignment,
and PER coding of large messages off the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from vcore.h323 import asn1
from vcore.h323.keys import SUITES, SrtpKeyMaterial, parse_security_capability
from vcore.h323.messages import (
    DEFAULT_FORMATS,
    G722,
    H224,
    H264_MODE1,
    PCMU,
    Address,
    OpenChannel,
    alerting_uuie,
    call_proceeding_uuie,
    connect_uuie,
    facility_uuie,
    flow_control_command,
    master_slave_determination,
    open_logical_channel,
    open_logical_channel_ack,
    open_logical_channel_pdu,
    release_complete_uuie,
    setup_uuie,
    terminal_capability_set,
    user_information,
    user_input_indication,
    video_fast_update_picture,
)


CID = bytes(range(16))
CONF = bytes(range(16, 32))
A = Address


def pre_h235_8(value: Any) -> Any:
    """``value`` with its SRTP suites listed as vcore did when the golden vectors below were recorded
    (``encryptionCapability``; the key was already H.235.8 ``SrtpKeys``), so the vectors still check the encoder."""
    if isinstance(value, dict):
        out = {k: pre_h235_8(v) for k, v in value.items()}
        eai = value.get("encryptionAuthenticationAndIntegrity")
        if eai is not None:
            out["encryptionAuthenticationAndIntegrity"] = {
                "encryptionCapability": [SUITES[name].algorithm() for name in parse_security_capability(eai).suites]}
        return out
    if isinstance(value, tuple):
        return tuple(pre_h235_8(v) for v in value)
    if isinstance(value, list):
        return [pre_h235_8(v) for v in value]
    return value


def corpus() -> list[tuple[str, str, Any]]:
    """Messages whose encodings exercise extension additions at every bit offset vcore produces."""
    endpoints = {1: (A("192.0.2.1", 5000), A("192.0.2.1", 5001)), 2: (A("192.0.2.1", 5002), A("192.0.2.1", 5003))}
    key = SrtpKeyMaterial("AEAD_AES_128_GCM", bytes(range(16)), bytes(range(16, 28)))
    fs = [asn1.encode_olc(pre_h235_8(open_logical_channel(c))) for c in (
        OpenChannel(1, H264_MODE1, False, 2, media_control=endpoints[2][1], suites=("AEAD_AES_128_GCM",), key=key),
        OpenChannel(2, G722, True, 1, media=endpoints[1][0], media_control=endpoints[1][1]),
        OpenChannel(3, PCMU, False, 1, media_control=endpoints[1][1]),
    )]
    out: list[tuple[str, str, Any]] = []
    for reason in ("undefinedReason", "securityDenied", "destinationRejection", "tunnelledSignallingRejected"):
        out.append((f"releaseComplete {reason}", asn1.UUIE,
                    user_information("releaseComplete", release_complete_uuie(call_id=CID, reason=reason))))
    out.append(("setup fastStart", asn1.UUIE, user_information("setup", setup_uuie(
        call_id=CID, conference_id=CONF, source_aliases=["Murat kiosk"], destination_aliases=["caf-agent", "1234"],
        source_address=A("192.0.2.1", 1720), destination_address=A("198.51.100.7", 1300), fast_start=fs,
        display_name="Maison des services de Murat"))))
    out.append(("setup h245Address no tunnelling", asn1.UUIE, user_information("setup", setup_uuie(
        call_id=CID, conference_id=CONF, h245_address=A("192.0.2.1", 40000)), tunnelling=False)))
    out.append(("callProceeding", asn1.UUIE, user_information("callProceeding", call_proceeding_uuie(call_id=CID))))
    out.append(("alerting fastStart", asn1.UUIE, user_information("alerting", alerting_uuie(
        call_id=CID, fast_start=fs[:2]))))
    out.append(("connect refused h245Address", asn1.UUIE, user_information("connect", connect_uuie(
        call_id=CID, conference_id=CONF, fast_connect_refused=True, h245_address=A("192.0.2.9", 40001)))))
    out.append(("facility startH245", asn1.UUIE, user_information("facility", facility_uuie(
        call_id=CID, conference_id=CONF, reason="startH245", h245_address=A("192.0.2.9", 40002)), tunnelling=False)))
    out.append(("tcs", asn1.H245, pre_h235_8(terminal_capability_set(1, DEFAULT_FORMATS, ("AEAD_AES_128_GCM",
                                                                                       "AES_CM_128_HMAC_SHA1_80")))))
    out.append(("olc h235Media key", asn1.H245, pre_h235_8(open_logical_channel_pdu(OpenChannel(
        64, H264_MODE1, False, 2, media_control=A("192.0.2.1", 5003), suites=("AEAD_AES_128_GCM",), key=key)))))
    out.append(("olc reverse g722", asn1.H245, open_logical_channel_pdu(OpenChannel(
        65, G722, True, 1, media=A("192.0.2.1", 5000), media_control=A("192.0.2.1", 5001)))))
    out.append(("olcAck", asn1.H245, open_logical_channel_ack(64, 2, A("198.51.100.7", 6002),
                                                               A("198.51.100.7", 6003))))
    out.append(("msd", asn1.H245, master_slave_determination(50, 0x123456)))
    out.append(("vfu", asn1.H245, video_fast_update_picture(64)))
    out.append(("flow", asn1.H245, flow_control_command(256000, 64)))
    out.append(("uii", asn1.H245, user_input_indication("vcore:camera-preset=3")))
    # H.235.8 (SrtpCryptoCapability in genericH235SecurityCapability) and the H.224 data channel
    key80 = SrtpKeyMaterial("AES_CM_128_HMAC_SHA1_80", bytes(range(16)), bytes(range(16, 30)))
    out.append(("olc h235.8", asn1.H245, open_logical_channel_pdu(OpenChannel(
        64, H264_MODE1, False, 2, media_control=A("192.0.2.1", 5003), suites=("AEAD_AES_128_GCM",), key=key))))
    out.append(("tcs h235.8 h224", asn1.H245, terminal_capability_set(2, (H264_MODE1, PCMU), (
        "AES_CM_128_HMAC_SHA1_80",), h224=True)))
    out.append(("olc h224", asn1.H245, open_logical_channel_pdu(OpenChannel(
        70, H224, False, 3, media_control=A("192.0.2.1", 5005), suites=("AES_CM_128_HMAC_SHA1_80",), key=key80))))
    return out


# encodings made by vcore's previous fix (it inspected the call stack); the current one must give the same bytes
GOLDEN = [
    ('releaseComplete undefinedReason', '25c0060008914a000458a8001100000102030405060708090a0b0c0d0e0f10800180'),
    ('releaseComplete securityDenied', '25c0060008914a00048101001500001100000102030405060708090a0b0c0d0e0f10800180'),
    ('releaseComplete destinationRejection', '25c0060008914a000418a8001100000102030405060708090a0b0c0d0e0f10800180'),
    ('releaseComplete tunnelledSignallingRejected', '25c0060008914a00048901001500001100000102030405060708090a0b0c0d0e0f10800180'),
    ('setup fastStart', '20b8060008914a000401400a004d00750072006100740020006b0069006f0073006b22c0b50000000476636f7265003100024008006300610066002d006100670065006e00740180456700c6336407051400101112131415161718191a1b1c1d1e1f00dd1d8000800700c000020106b81100000102030405060708090a0b0c0d0e0f80c9038093800000204030200020b500000010414541445f4145535f3132385f47434d30001560000700088171000001404e200202914002a20047801804600200c0000201138b04000b50080008817100000001c00480400060003b803aa0146983c5bfb09f8adfaa98eb97c79497b9a88ecb7b00202120010010000102030405060708090a0b0c0d0e0f0c101112131415161718191a1b1e400001060401004ca013801215000100c0000201138800c0000201138900130000020c6013800b05000100c000020113890001000100010001003a011b004d006100690073006f006e00200064006500730020007300650072007600690063006500730020006400650020004d007500720061007410800180'),
    ('setup h245Address no tunnelling', '20c0060008914a000400c00002019c4022c0b50000000476636f7265003100101112131415161718191a1b1c1d1e1f00d90d8000001100000102030405060708090a0b0c0d0e0f010001000100010010800100'),
    ('callProceeding', '2180060008914a000422c0b50000000476636f726500310110c01100000102030405060708090a0b0c0d0e0f0100010010800180'),
    ('alerting fastStart', '2380060008914a000422c0b50000000476636f7265003101d1c0001100000102030405060708090a0b0c0d0e0f80b5028093800000204030200020b500000010414541445f4145535f3132385f47434d30001560000700088171000001404e200202914002a20047801804600200c0000201138b04000b50080008817100000001c00480400060003b803aa0146983c5bfb09f8adfaa98eb97c79497b9a88ecb7b00202120010010000102030405060708090a0b0c0d0e0f0c101112131415161718191a1b1e400001060401004ca013801215000100c0000201138800c00002011389000100010010800180'),
    ('connect refused h245Address', '22c0060008914a000400c00002099c4122c0b50000000476636f7265003100101112131415161718191a1b1c1d1e1f1f0c201100000102030405060708090a0b0c0d0e0f01000100010010800180'),
    ('facility startH245', '2690060008914a0004101112131415161718191a1b1c1d1e1f8101001f05801100000102030405060708090a0b0c0d0e0f0700c00002099c420100010010800100'),
    ('tcs', '0270010600088175000d802600003c0001000001000001000c02170150080008817100000001c0a0080008817100000000c2098000000c001560000700088171000001404e200202914002a200478000018123200120b500000010414541445f4145535f3132385f47434d40070008816b00045b00008000020c001560000700088171000001404e200202914002a200478000038123200120b500000010414541445f4145535f3132385f47434d40070008816b00045b00028000042140138000058123200120b500000010414541445f4145535f3132385f47434d40070008816b00045b000480000620c0138000078123200120b500000010414541445f4145535f3132385f47434d40070008816b00045b00068000082040138000098123200120b500000010414541445f4145535f3132385f47434d40070008816b00045b000800800001020004000600080100000002'),
    ('olc h235Media key', '0380003f204030200020b500000010414541445f4145535f3132385f47434d30001560000700088171000001404e200202914002a20047801804600200c0000201138b04000b50080008817100000001c00480400060003b803aa0146983c5bfb09f8adfaa98eb97c79497b9a88ecb7b00202120010010000102030405060708090a0b0c0d0e0f0c101112131415161718191a1b'),
    ('olc reverse g722', '03400040060401004ca013801215000100c0000201138800c0000201138900'),
    ('olcAck', '22c0003f0680101c0200c6336407177200c63364071773'),
    ('msd', '01003280123456'),
    ('vfu', '4c003f28'),
    ('flow', '4800003f200a00'),
    ('uii', '6d401576636f72653a63616d6572612d7072657365743d33'),
    # recorded with the current encoder when vcore moved to H.235.8 and added the H.224 data channel
    ('olc h235.8', '0380003f20403d4008220800070008816b00045a170140146983c5bfb09f8adfaa98eb97c79497b9a88ecb7b30001560000700088171000001404e200202914002a20047801804600200c0000201138b04000b50080008817100000001c00480400060003b803aa0146983c5bfb09f8adfaa98eb97c79497b9a88ecb7b00202120010010000102030405060708090a0b0c0d0e0f0c101112131415161718191a1b'),
    ('tcs h235.8 h224', '0270020600088175000d801b00003c0001000001000001000c020c0050080008817100000001c0058000000c001560000700088171000001404e200202914002a20047800001811a4008150800070008816b00045a0a0140070008816b00045b000080000220c013800003811a4008150800070008816b00045a0a0140070008816b00045b000280000448c6800280800005811a4008150800070008816b00045a0a0140070008816b00045b000400800002000002000000000004'),
    ('olc h224', '0380004520401c4008150800070008816b00045a0a0140070008816b00045b631a0280800b0c400300c0000201138d2004803500640030802fa0070008816b00045b00202322010010000102030405060708090a0b0c0d0e0f0e101112131415161718191a1b1c1d'),
]


@pytest.mark.parametrize("index", range(len(GOLDEN)), ids=[name for name, _ in GOLDEN])
def test_encodings_are_byte_exact(index: int) -> None:
    name, type_name, value = corpus()[index]
    assert GOLDEN[index][0] == name
    data = asn1.encode(type_name, value)
    assert data.hex() == GOLDEN[index][1]
    assert asn1.encode(type_name, asn1.decode(type_name, data)) == data  # and pycrate's decoder agrees


def test_release_complete_extension_addition_starts_aligned() -> None:
    """The vector that pycrate 0.8.1 gets wrong: a root reason followed by the callIdentifier extension."""
    data = asn1.encode_uuie(user_information("releaseComplete", release_complete_uuie(call_id=CID)))
    value = asn1.decode_uuie(data)
    assert value["h323-uu-pdu"]["h323-message-body"][1]["callIdentifier"] == {"guid": CID}


def test_the_schemas_have_no_extension_groups() -> None:
    """The fix covers single extension additions; it would need extending for [[ ]] groups, which none of the
    H.225.0/H.245/H.235 types pycrate compiled have."""
    from pycrate_asn1rt.asnobj_construct import SEQ, SET
    from pycrate_asn1rt.glob import GLOBAL

    asn1.encode_h245(video_fast_update_picture(1))  # loads the modules
    seen: set[int] = set()
    groups: list[str] = []

    def walk(obj: Any, depth: int = 0) -> None:
        if id(obj) in seen or depth > 40:
            return
        seen.add(id(obj))
        if isinstance(obj, (SEQ, SET)) and getattr(obj, "_ext_group_obj", None):
            groups.append(obj.fullname())
        content = getattr(obj, "_cont", None)
        if content is not None and hasattr(content, "keys"):
            for key in list(content.keys()):
                walk(content[key], depth + 1)

    for module in ("H323-MESSAGES", "MULTIMEDIA-SYSTEM-CONTROL", "H235-SECURITY-MESSAGES"):
        for obj in GLOBAL.MOD[module].values():
            if hasattr(obj, "TYPE"):
                walk(obj)
    assert len(seen) > 1000 and groups == []


def test_large_setup_is_decoded_off_the_event_loop() -> None:
    """A 20-proposal Setup (~15 ms of PER) is decoded in a worker thread; a small message stays on the loop."""
    from vcore.h323 import h245_path as session_module
    from vcore.h323.messages import parse_user_information

    fs = [bytes(x) for x in corpus()[4][2]["h323-uu-pdu"]["h323-message-body"][1]["fastStart"]] * 7
    big = asn1.encode_uuie(user_information("setup", setup_uuie(call_id=CID, conference_id=CONF, fast_start=fs)))
    small = asn1.encode_uuie(user_information("callProceeding", call_proceeding_uuie(call_id=CID)))
    threads: list[str] = []

    def parse(data: bytes) -> Any:
        threads.append(threading.current_thread().name)
        return parse_user_information(data)

    async def main() -> None:
        assert len(big) >= session_module.OFF_LOOP_BYTES > len(small)
        info = await session_module.off_loop(len(big), parse, big)
        assert info.fast_start is not None and len(info.fast_start) == 21
        await session_module.off_loop(len(small), parse, small)

    asyncio.run(main())
    assert threads[0] != threading.main_thread().name and threads[1] == threading.main_thread().name
