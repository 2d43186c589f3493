"""Parsing request bodies without holding the interpreter for long.

orjson parses a 19 MB body in one native call of 50-250 ms, and no other thread (the event
loop included) runs meanwhile, even when the call is made on a thread. Past `SPLIT_BYTES`, a
body is parsed in pieces instead: the containers are walked here, in Python, and each value
small enough is parsed by one call of the standard library's native scanner, so between two
pieces the interpreter can switch to the event loop. A container is parsed whole when it fits
a window sized after its previous sibling (a recipient of 2 KB is one call), else walked.

Same answers as orjson: NaN, Infinity and 1e400 are refused, integers beyond 64 bits become
floats,
a lone surrogate (which orjson refuses) sends the body back to orjson.
"""

import json
import math
import re
from collections.abc import Callable
from typing import Any

import orjson

SPLIT_BYTES = 1 << 20  # below this, orjson's one call is short enough
MAX_PIECE = 1 << 20  # characters parsed by one native call, at most (strings aside)
MAX_ITEMS = 100_000  # items of one walked array or object
MAX_DEPTH = 32  # as api/body_check.MAX_DEPTH: deeper values are refused anyway

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A \\uD800-\\uDBFF not followed by a \\uDC00-\\uDFFF, or the reverse: orjson refuses them.
# A surrogate escape: orjson refuses a lone one (a high \\uD800-\\uDBFF not followed by a
# low \\uDC00-\\uDFFF, or a low not after a high), the standard library does not.
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
MAX_NUMBERS = 100_000  # numbers in one body: no request has a use for more


class Malformed(ValueError):
    """The body is not JSON (`message` says why, as orjson would)."""


class TooLarge(ValueError):
    """More than MAX_ITEMS items in an array or object, more than MAX_NUMBERS numbers, or
    nested deeper than MAX_DEPTH (a large body only)."""


def _no_constant(name: str) -> Any:
    raise Malformed(f"{name} is not a JSON value")


# The standard library's native scanners (not in its type stubs).
_STRING: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]


def loads(raw: bytes) -> Any:
    """`orjson.loads`, in pieces past SPLIT_BYTES; raises orjson.JSONDecodeError, Malformed
    or TooLarge."""
    if len(raw) < SPLIT_BYTES:
        return orjson.loads(raw)
    try:
        text = raw.decode()
    except UnicodeDecodeError as error:
        raise Malformed(f"the body is not UTF-8 ({error.reason} at byte {error.start})") from None
    if "\\u" in text and _lone_surrogate(text):
        return orjson.loads(raw)
    try:
        value, end = _Walk(text).value(_skip(text, 0), 0)
    except json.JSONDecodeError as error:
        raise Malformed(f"{error.msg} at character {error.pos}") from None
    except RecursionError:
        raise TooLarge(f"the body nests deeper than {MAX_DEPTH} levels") from None
    if _skip(text, end) != len(text):
        raise Malformed(f"unexpected content after the document at character {end}")
    return value


def _lone_surrogate(text: str) -> bool:
    """Whether a surrogate escape is not half of a pair (an escaped backslash before a
    `u` can be a false alarm, which only costs parsing by orjson)."""
    previous_high_end = -1
    high_pending = False
    for match in _SURROGATE.finditer(text):
        high = match.group()[2] in "89abAB"
        if high_pending and (high or match.start() != previous_high_end):
            return True
        if not high and not high_pending:
            return True
        high_pending, previous_high_end = high, match.end()
    return high_pending


def _skip(text: str, i: int) -> int:
    match = _WHITESPACE.match(text, i)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _expected(what: str, text: str, i: int) -> json.JSONDecodeError:
    return json.JSONDecodeError(f"expecting {what}", text, i)


class _Walk:
    def __init__(self, text: str) -> None:
        self.text = text
        self.numbers = 0
        # orjson makes an integer past 64 bits a float and refuses 1e400; checking that
        # costs a Python call per number, so a body of millions of them is refused.
        decoder = json.JSONDecoder(
            parse_constant=_no_constant, parse_int=self._integer, parse_float=self._float
        )
        self._scan_once: Callable[[str, int], tuple[Any, int]] = decoder.scan_once  # type: ignore[attr-defined]

    def _count(self) -> None:
        self.numbers += 1
        if self.numbers > MAX_NUMBERS:
            raise TooLarge(f"the body has more than {MAX_NUMBERS:,} numbers")

    def _integer(self, digits: str) -> int | float:
        self._count()
        if len(digits) > 18:  # might be past 64 bits: as orjson does
            value = int(digits) if len(digits) <= 21 else None
            if value is None or not -(1 << 63) <= value < (1 << 64):
                return self._float(digits)
            return value
        return int(digits)

    def _float(self, digits: str) -> float:
        self._count()
        value = float(digits)
        if math.isinf(value):
            raise Malformed(f"the number {digits[:20]} is out of range")
        return value

    def value(self, i: int, depth: int, hint: int = 0) -> tuple[Any, int]:
        """The value at `i` and the index after it; `hint` is the size of the previous
        sibling, a guess at this one's."""
        text = self.text
        first = text[i : i + 1]
        if first == '"':
            return _STRING(text, i + 1, True)  # native, and fast even for a long string
        if first not in ("{", "["):
            return self._scan(text, i)  # a number or a literal: short
        window = max(2 * hint + 1024, 4096)
        while window <= MAX_PIECE:
            piece = text[i : i + window]
            try:
                value, end = self._scan_once(piece, 0)
                return value, i + end
            except (json.JSONDecodeError, StopIteration) as error:
                if i + window >= len(text):  # the piece was the whole rest: a real error
                    raise self._at(error, i) from None
            window *= 8
        if depth >= MAX_DEPTH:
            raise TooLarge(f"the body nests deeper than {MAX_DEPTH} levels")
        return self._object(i + 1, depth + 1) if first == "{" else self._array(i + 1, depth + 1)

    def _scan(self, text: str, i: int) -> tuple[Any, int]:
        try:
            return self._scan_once(text, i)
        except StopIteration:
            raise _expected("a value", text, i) from None

    def _at(self, error: json.JSONDecodeError | StopIteration, offset: int) -> Exception:
        if isinstance(error, StopIteration):
            return _expected("a value", self.text, offset + int(error.value))
        return json.JSONDecodeError(error.msg, self.text, offset + error.pos)

    def _array(self, i: int, depth: int) -> tuple[list[Any], int]:
        text, items = self.text, list[Any]()
        i = _skip(text, i)
        if text[i : i + 1] == "]":
            return items, i + 1
        last = 0
        while True:
            start = i
            item, i = self.value(start, depth, hint=last)
            last = i - start
            items.append(item)
            if len(items) > MAX_ITEMS:
                raise TooLarge(f"an array of the body has more than {MAX_ITEMS:,} items")
            i = _skip(text, i)
            following = text[i : i + 1]
            if following == "]":
                return items, i + 1
            if following != ",":
                raise _expected("',' or ']'", text, i)
            i = _skip(text, i + 1)

    def _object(self, i: int, depth: int) -> tuple[dict[str, Any], int]:
        text, members = self.text, dict[str, Any]()
        i = _skip(text, i)
        if text[i : i + 1] == "}":
            return members, i + 1
        last = 0
        while True:
            if text[i : i + 1] != '"':
                raise _expected("a property name in double quotes", text, i)
            key, i = _STRING(text, i + 1, True)
            i = _skip(text, i)
            if text[i : i + 1] != ":":
                raise _expected("':'", text, i)
            start = _skip(text, i + 1)
            members[key], i = self.value(start, depth, hint=last)
            last = i - start
            if len(members) > MAX_ITEMS:
                raise TooLarge(f"an object of the body has more than {MAX_ITEMS:,} members")
            i = _skip(text, i)
            following = text[i : i + 1]
            if following == "}":
                return members, i + 1
            if following != ",":
                raise _expected("',' or '}'", text, i)
            i = _skip(text, i + 1)
