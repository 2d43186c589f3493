"""Phone address checks (decision 12): E.164 and possible for the country.

`phonenumbers.parse` costs about 60 µs, too much for 10,000 recipients per request. Whether a
number is possible depends only on its country code, the leading digits that national-prefix
rules look at, and its length, so the answer is cached on that key. The test suite checks the
cache against the library on many numbers.
"""

import re

import phonenumbers

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
# Longest national-prefix-for-parsing pattern in the metadata looks at fewer leading digits.
_KEY_DIGITS = 8


def is_e164(address: str) -> bool:
    return _E164.match(address) is not None


def is_possible(address: str) -> bool:
    """True for an E.164 number that is possible for its country."""
    if not is_e164(address):
        return False
    digits = address[1:]
    # The country code, then the national digits that national-prefix rules look at.
    code_length = _country_code_length(digits)
    key = (digits[: code_length + _KEY_DIGITS], len(digits))
    cached = _shape_cache.get(key)
    if cached is None:
        cached = _possible_exact(address)
        if len(_shape_cache) < _CACHE_LIMIT:
            _shape_cache[key] = cached
    return cached


_CACHE_LIMIT = 200_000
_shape_cache: dict[tuple[str, int], bool] = {}


# As text: E.164 digits start with 1-9, so a code's digits are its decimal form.
_COUNTRY_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _country_code_length(digits: str) -> int:
    if digits[:1] in _COUNTRY_CODES:
        return 1
    return 2 if digits[:2] in _COUNTRY_CODES else 3


def _possible_exact(address: str) -> bool:
    try:
        number = phonenumbers.parse(address, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(number))


def region_of(address: str) -> str | None:
    """The ISO region of a phone number, for resolving local schedule times."""
    try:
        number = phonenumbers.parse(address, None)
    except phonenumbers.NumberParseException:
        return None
    region: str | None = phonenumbers.region_code_for_number(number)
    return region


def country_code(address: str) -> str | None:
    """The country calling code of an E.164 number (`+44...` -> "44"), without parsing."""
    if not is_e164(address):
        return None
    digits = address[1:]
    return digits[: _country_code_length(digits)]
