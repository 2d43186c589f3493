"""The cached phone check must answer exactly as phonenumbers does."""

import random

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from opencomms.domain import phone

COUNTRY_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def reference(address: str) -> bool:
    if not phone.is_e164(address):
        return False
    try:
        return bool(phonenumbers.is_possible_number(phonenumbers.parse(address, None)))
    except phonenumbers.NumberParseException:
        return False


@settings(max_examples=3000, deadline=None)
@given(
    code=st.sampled_from(COUNTRY_CODES),
    national=st.text(alphabet="0123456789", min_size=1, max_size=14),
)
def test_matches_the_library_on_random_numbers(code: int, national: str) -> None:
    address = f"+{code}{national}"[:16]
    assert phone.is_possible(address) == reference(address)


def test_known_numbers() -> None:
    assert phone.is_possible("+14153902337")
    assert phone.is_possible("+17773178001")  # unassigned range, possible: decision 12
    assert phone.is_possible("+447700900123")
    assert not phone.is_possible("+1415")
    assert not phone.is_possible("4153902337")
    assert not phone.is_possible("+0123456789")
    assert not phone.is_possible("+999123456")
    assert not phone.is_possible("tel:+14153902337")


def test_numbers_parsing_strips_nothing_from_share_the_answer_of_their_length() -> None:
    """What the cache relies on: for each country and length, numbers whose national part
    the country's prefix pattern does not match are all possible or all not."""
    rng = random.Random(7)
    for code in COUNTRY_CODES:
        prefix = phone._national_prefix(str(code))
        for length in range(1, 16 - len(str(code))):
            answers = set()
            for _ in range(6):
                national = "".join(rng.choice("0123456789") for _ in range(length))
                if prefix is not None and prefix.match(national):
                    continue
                answers.add(reference(f"+{code}{national}"))
            assert len(answers) <= 1, (code, length)


def test_numbers_a_national_prefix_could_be_stripped_from_match_the_library() -> None:
    phone._shape_cache.clear()
    rng = random.Random(11)
    for code in COUNTRY_CODES:
        if phone._national_prefix(str(code)) is None:
            continue
        for lead in ("0", "1", "8", "9", "180020", "90", "0215", "179"):
            for length in (4, 7, 9, 10, 11, 12):
                national = (lead + "".join(rng.choice("0123456789") for _ in range(14)))[:length]
                address = f"+{code}{national}"[:16]
                assert phone.is_possible(address) == reference(address), address
