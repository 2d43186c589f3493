"""The cached phone check must answer exactly as phonenumbers does."""

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
