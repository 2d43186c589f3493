"""Phone address checks (decision 12): E.164 and possible for the country.

`phonenumbers.parse` costs about 14-60 µs, too much for 10,000 recipients per request, so its
answers are cached on what they depend on. Whether a number is possible depends on its
country and the length of its national number, unless parsing strips a national prefix
from it, which only happens when the country's prefix pattern matches the number's start:
then on the leading digits too. So a number whose start that pattern does not match shares
its answer with every number of its country and length (a send to 10,000 new US numbers asks
the library a few times instead of 10,000: 140 ms of checks became a few), and the others
are cached on their leading digits. The test suite checks the cache against the library on
many numbers.
"""

import re
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata

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
    code_length = _country_code_length(digits)
    prefix = _national_prefix(digits[:code_length])
    # Matched on the national number itself, as `parse` does (a pattern may anchor there).
    if prefix is None or prefix.match(digits[code_length:]) is None:
        key = (digits[:code_length], len(digits), False)  # nothing to strip: the length decides
    else:  # the country code, then the national digits that national-prefix rules look at
        key = (digits[: code_length + _KEY_DIGITS], len(digits), True)
    cached = _shape_cache.get(key)
    if cached is None:
        cached = _possible_exact(address)
        if len(_shape_cache) < _CACHE_LIMIT:
            _shape_cache[key] = cached
    return cached


_CACHE_LIMIT = 200_000
_shape_cache: dict[tuple[str, int, bool], bool] = {}


# As text: E.164 digits start with 1-9, so a code's digits are its decimal form.
_COUNTRY_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _country_code_length(digits: str) -> int:
    if digits[:1] in _COUNTRY_CODES:
        return 1
    return 2 if digits[:2] in _COUNTRY_CODES else 3


@cache
def _national_prefix(country_code: str) -> re.Pattern[str] | None:
    """The pattern `parse` strips a national prefix by (matched at the national number's
    start), for the country code's main region; None when it has none."""
    code = int(country_code)
    region = phonenumbers.region_code_for_country_code(code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    pattern = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(pattern) if pattern else None


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
