"""The codec without a network: PDUs, GSM 03.38, UCS-2, splitting, UDH, receipts, statuses."""

from pathlib import Path

import pytest

from opencomms.channels.smpp import gsm, pdu, receipts
from opencomms.channels.smpp.config import SmppRouteConfig
from opencomms.channels.smpp.inbound import Reassembler, Segment, split_udh
from opencomms.channels.smpp.status import STATUSES, Outcome, describe, status_of
from opencomms.domain import errors


def test_short_message_round_trip_with_tlvs() -> None:
    sm = pdu.ShortMessage(
        "15005550006",
        "14155550100",
        b"\x05\x00\x03\x07\x02\x01hello",
        service_type="CMT",
        source_ton=5,
        source_npi=0,
        esm_class=pdu.ESM_UDHI,
        validity_period="000001000000000R",
        registered_delivery=1,
        data_coding=gsm.DC_UCS2,
        tlvs={pdu.TLV_RECEIPTED_MESSAGE_ID: b"ABC123\0", pdu.TLV_MESSAGE_STATE: b"\x02"},
    )
    assert pdu.decode_sm(sm.encode()) == sm


def test_template_body_reads_back_as_the_fields_it_was_given() -> None:
    template = pdu.SubmitTemplate(service_type="X", dest_ton=2, dest_npi=3, validity_period="")
    body = template.body(
        b"ACME", 5, 0, b"14155550100", 8, b"\x00h\x00i", esm_class=0x40, tlvs=pdu.sar_tlvs(9, 2, 1)
    )
    sm = pdu.decode_sm(body)
    assert (sm.service_type, sm.source_addr, sm.source_ton, sm.source_npi) == ("X", "ACME", 5, 0)
    assert (sm.destination_addr, sm.dest_ton, sm.dest_npi) == ("14155550100", 2, 3)
    assert (sm.esm_class, sm.registered_delivery, sm.data_coding) == (0x40, 1, 8)
    assert sm.short_message == b"\x00h\x00i"
    assert pdu.tlv_int(sm.tlvs, pdu.TLV_SAR_MSG_REF_NUM) == 9
    assert pdu.tlv_int(sm.tlvs, pdu.TLV_SAR_TOTAL_SEGMENTS) == 2
    assert pdu.tlv_int(sm.tlvs, pdu.TLV_SAR_SEGMENT_SEQNUM) == 1


@pytest.mark.parametrize(
    "body",
    [b"", b"CMT", b"\0\1\1123\0\1\1", b"\0\1\1a\0\1\1b\0\0\0\0\0\0\0\0\0\0\x09abc", b"\0" * 30],
)
def test_a_malformed_body_raises_pdu_error(body: bytes) -> None:
    with pytest.raises(pdu.PduError):
        pdu.decode_sm(body)


def test_frames_split_at_pdu_boundaries_and_keep_the_rest() -> None:
    one = pdu.pack(pdu.ENQUIRE_LINK, 0, 7)
    two = pdu.pack(pdu.SUBMIT_SM_RESP, 0x58, 8, b"id\0")
    buffer = bytearray(one + two + two[:5])
    frames, used = pdu.split_frames(buffer)
    assert frames == [(pdu.ENQUIRE_LINK, 0, 7, b""), (pdu.SUBMIT_SM_RESP, 0x58, 8, b"id\0")]
    assert used == len(one) + len(two)
    with pytest.raises(pdu.PduError):
        pdu.split_frames(bytearray(b"\0\0\0\x05" + b"\0" * 12))


def test_bind_body_layout() -> None:
    assert pdu.bind_body("sys", "pw", "vms") == b"sys\0pw\0vms\0\x34\0\0\0"


def test_gsm_basic_and_extension_table_round_trip() -> None:
    text = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà"
    assert gsm.fits_gsm(text)
    assert gsm.decode_gsm(gsm.encode_gsm(text)) == text
    extended = "^{}\\[~]|€\f"
    encoded = gsm.encode_gsm(extended)
    assert encoded == b"\x1b\x14\x1b(\x1b)\x1b/\x1b<\x1b=\x1b>\x1b@\x1be\x1b\n"
    assert gsm.decode_gsm(encoded) == extended


def test_characters_outside_gsm_choose_ucs2() -> None:
    assert not gsm.fits_gsm("café ` done")  # the backtick is not in GSM 03.38
    assert not gsm.fits_gsm("Привет")
    assert gsm.encode_text("Привет").data_coding == gsm.DC_UCS2
    assert gsm.encode_text("plain").data_coding == gsm.DC_DEFAULT
    assert gsm.encode_text("plain", force_ucs2=True).data_coding == gsm.DC_UCS2


def test_septet_packing_known_vector_and_round_trip() -> None:
    assert gsm.pack_septets(gsm.encode_gsm("hellohello")).hex() == "e8329bfd4697d9ec37"
    for length in range(17):
        septets = bytes((i * 37) % 128 for i in range(length))
        packed = gsm.pack_septets(septets)
        assert len(packed) == (7 * length + 7) // 8
        assert gsm.unpack_septets(packed, length) == septets


@pytest.mark.parametrize(
    ("length", "parts"), [(160, [160]), (161, [153, 8]), (306, [153, 153]), (307, [153, 153, 1])]
)
def test_gsm_split_boundaries(length: int, parts: list[int]) -> None:
    assert [len(p) for p in gsm.encode_text("a" * length).parts] == parts


@pytest.mark.parametrize(
    ("length", "parts"), [(70, [70]), (71, [67, 4]), (134, [67, 67]), (135, [67, 67, 1])]
)
def test_ucs2_split_boundaries(length: int, parts: list[int]) -> None:
    assert [len(p) // 2 for p in gsm.encode_text("ж" * length).parts] == parts


def test_an_extension_character_counts_two_septets_and_is_never_split() -> None:
    assert [len(p) for p in gsm.encode_text("€" * 80).parts] == [160]
    split = gsm.encode_text("a" * 152 + "€" + "b" * 10)  # 164 septets, the escape at 153
    assert [len(p) for p in split.parts] == [152, 12]
    assert split.parts[1].startswith(b"\x1be")


def test_a_surrogate_pair_is_never_split() -> None:
    text = "ж" * 66 + "😀" + "ж" * 5  # 73 units; the pair would straddle units 67 and 68
    split = gsm.encode_text(text)
    assert [len(p) // 2 for p in split.parts] == [66, 7]
    assert b"".join(split.parts).decode("utf-16-be") == text


def test_decode_text_by_data_coding() -> None:
    assert gsm.decode_text(gsm.encode_gsm("a€"), 0) == "a€"
    assert gsm.decode_text("é".encode("latin-1"), 3) == "é"
    assert gsm.decode_text("ж😀".encode("utf-16-be"), 8) == "ж😀"
    assert gsm.decode_text(b"abc", 1) == "abc"
    assert gsm.decode_text(gsm.encode_gsm("hi"), 0xF0) == "hi"


def test_udh_and_sar_segments_are_read() -> None:
    udh = pdu.ShortMessage("1", "2", gsm.udh_concat(7, 3, 2) + b"abc", esm_class=pdu.ESM_UDHI)
    assert split_udh(udh) == (b"abc", Segment(7, 3, 2))
    sixteen = b"\x06\x08\x04\x01\x02\x02\x01" + b"xy"
    assert split_udh(pdu.ShortMessage("1", "2", sixteen, esm_class=0x40)) == (
        b"xy",
        Segment(258, 2, 1),
    )
    sar = pdu.ShortMessage("1", "2", b"abc", tlvs=pdu.decode_tlvs(pdu.sar_tlvs(300, 2, 2), 0))
    assert split_udh(sar) == (b"abc", Segment(300, 2, 2))
    assert split_udh(pdu.ShortMessage("1", "2", b"abc")) == (b"abc", None)


def test_reassembly_joins_parts_in_order_whatever_order_they_came_in() -> None:
    parts = gsm.encode_text("ж" * 66 + "😀" + "ж" * 10).parts
    assembler: Reassembler[int] = Reassembler()
    assert assembler.add("+1", "+2", Segment(5, 2, 2), parts[1], 8, 20, 0.0) is None
    assert assembler.add("+1", "+2", Segment(5, 2, 2), parts[1], 8, 21, 0.0) is None  # again
    done = assembler.add("+1", "+2", Segment(5, 2, 1), parts[0], 8, 10, 0.0)
    assert done == ("ж" * 66 + "😀" + "ж" * 10, [20, 21, 10])
    assert len(assembler) == 0
    assembler.add("+1", "+2", Segment(6, 2, 1), parts[0], 8, 30, 0.0)
    assert assembler.expire(1.0) == [30]
    assert len(assembler) == 0


def _receipt(short_message: bytes, **tlvs: bytes) -> pdu.ShortMessage:
    tags = {"receipted_message_id": pdu.TLV_RECEIPTED_MESSAGE_ID, "state": pdu.TLV_MESSAGE_STATE}
    return pdu.ShortMessage(
        "14155550100",
        "15005550006",
        short_message,
        esm_class=pdu.ESM_DELIVERY_RECEIPT,
        tlvs={tags[k]: v for k, v in tlvs.items()},
    )


def test_text_receipts_map_to_statuses_and_codes() -> None:
    text = b"id:0A1B sub:001 dlvrd:001 submit date:2612031200 done date:2612031201 stat:%s err:%s"
    delivered = receipts.parse(_receipt(text % (b"DELIVRD", b"000")))
    assert delivered == receipts.ParsedReceipt("0A1B", "DELIVRD", 0)
    assert receipts.to_receipt(delivered).status == "DELIVERED"  # type: ignore[union-attr]
    expected = {
        (b"UNDELIV", b"001"): errors.UNKNOWN_DESTINATION,
        (b"UNDELIV", b"027"): errors.UNREACHABLE_HANDSET,
        (b"UNDELIV", b"999"): errors.UNREACHABLE_HANDSET,
        (b"EXPIRED", b"000"): errors.UNREACHABLE_HANDSET,
        (b"REJECTD", b"000"): 30007,
        (b"DELETED", b"000"): 30008,
    }
    for (stat, err), code in expected.items():
        parsed = receipts.parse(_receipt(text % (stat, err)))
        receipt = receipts.to_receipt(parsed)  # type: ignore[arg-type]
        assert receipt is not None
        assert (receipt.external_id, receipt.status, receipt.error_code) == (
            "0A1B",
            "UNDELIVERED",
            code,
        )
    for stat in (b"ACCEPTD", b"ENROUTE"):
        assert receipts.to_receipt(receipts.parse(_receipt(text % (stat, b"0")))) is None  # type: ignore[arg-type]


def test_tlv_receipts_win_over_the_text() -> None:
    sm = _receipt(b"id:WRONG stat:DELIVRD err:000", receipted_message_id=b"F00D\0", state=b"\x05")
    receipt = receipts.to_receipt(receipts.parse(sm))  # type: ignore[arg-type]
    assert receipt is not None
    assert (receipt.external_id, receipt.status) == ("F00D", "UNDELIVERED")
    assert receipts.parse(_receipt(b"no id here")) is None
    assert receipts.is_receipt(pdu.ESM_DELIVERY_RECEIPT)
    assert not receipts.is_receipt(pdu.ESM_UDHI)


def test_every_command_status_has_an_outcome_and_failures_a_code() -> None:
    for value, status in STATUSES.items():
        assert status_of(value) is status
        if status.outcome in (Outcome.PERMANENT, Outcome.TRANSIENT, Outcome.SLOW_DOWN):
            assert status.code is not None
    assert status_of(0x58).outcome is Outcome.SLOW_DOWN
    assert status_of(0x14).outcome is Outcome.SLOW_DOWN
    assert status_of(0x0E).outcome is Outcome.BIND_REFUSED
    assert status_of(0x0B).code == errors.INVALID_TO_NUMBER
    assert status_of(0x0421).outcome is Outcome.TRANSIENT  # a vendor code
    assert describe(0x0E) == "ESME_RINVPASWD (0x0000000E): Invalid password"


def test_the_docs_table_lists_every_command_status() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "smpp.md").read_text()
    for value, status in STATUSES.items():
        assert f"| `0x{value:08X}` | `{status.name}`" in docs, status.name


def test_the_docs_table_lists_every_route_option() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "smpp.md").read_text()
    rows = [line for line in docs.splitlines() if line.startswith("| `")]
    for name in SmppRouteConfig.model_fields:
        assert any(f"`{name}`" in row.split(" | ")[0] for row in rows), name


def test_packed_parts_after_a_udh_start_on_a_septet_boundary() -> None:
    encoded = gsm.encode_text("hello " * 40)  # 240 septets: two parts
    single = gsm.payloads(gsm.encode_text("hellohello"), packed=True)
    assert single == [bytes.fromhex("e8329bfd4697d9ec37")]
    parts = gsm.payloads(encoded, packed=True, udh_reference=9)
    assert [p[:6] for p in parts] == [gsm.udh_concat(9, 2, 1), gsm.udh_concat(9, 2, 2)]
    for raw, part in zip(encoded.parts, parts, strict=True):
        assert len(part) == 6 + (7 * (len(raw) + 7) + 7) // 8 - 6  # one fill bit, whole septets
        # Unpacked from the UDH's first bit, the text follows 7 septets of UDH and fill.
        unpacked = gsm.unpack_septets(b"\0" * 6 + part[6:], 7 + len(raw))
        assert unpacked[7:] == raw
    assert gsm.payloads(encoded, udh_reference=9)[1] == gsm.udh_concat(9, 2, 2) + encoded.parts[1]
