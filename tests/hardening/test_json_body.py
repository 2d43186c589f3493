"""api/json_body.py parses large bodies in pieces with the answers orjson gives."""

import json
import random
from typing import Any

import orjson
import pytest

from opencomms.api import json_body


def outcome(parse: Any, raw: bytes) -> tuple[Any, ...]:
    try:
        return ("ok", parse(raw))
    except (orjson.JSONDecodeError, json_body.Malformed, json_body.TooLarge):
        return ("refused",)


def value(rnd: random.Random, depth: int = 0) -> Any:
    roll = rnd.random()
    if depth > 4 or roll < 0.3:
        scalars = [1, -2, 3.5, "xé😀", 'a\\"b', None, True, False, 2**63, "", 1e300]
        return rnd.choice(scalars)
    if roll < 0.65:
        return [value(rnd, depth + 1) for _ in range(rnd.randrange(6))]
    return {f"k{i}": value(rnd, depth + 1) for i in range(rnd.randrange(6))}


@pytest.fixture
def tiny_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every body split, and into pieces of at most 64 characters: every path is taken."""
    monkeypatch.setattr(json_body, "SPLIT_BYTES", 0)
    monkeypatch.setattr(json_body, "MAX_PIECE", 64)


@pytest.mark.usefixtures("tiny_pieces")
def test_the_same_answers_as_orjson_for_random_and_broken_documents() -> None:
    rnd = random.Random(7)
    for _ in range(2000):
        raw = orjson.dumps(value(rnd))
        if rnd.random() < 0.5:  # other whitespace, and \\u escapes (ensure_ascii)
            raw = json.dumps(orjson.loads(raw), indent=rnd.choice([None, 1])).encode()
        cut = rnd.randrange(len(raw))
        broken = raw[:cut] + bytes([rnd.choice(b'{}[],:"x1 \\')]) + raw[cut + 1 :]
        for candidate in (raw, broken, raw[:cut]):
            assert outcome(json_body.loads, candidate) == outcome(orjson.loads, candidate)


@pytest.mark.usefixtures("tiny_pieces")
@pytest.mark.parametrize(
    "raw",
    [
        b"NaN", b"[Infinity]", b"[-Infinity]", b'"\\ud800"', b'["\\udc00x"]', b'["\\ud83d\\ude00"]',
        b"  [1] ", b"[1] x", b"\xff", b'{"a":1,}', b"[1,]", b"[01]", b"1e400", b'{"a" 1}',
        b'"\x01"', b"[" + str(2**70).encode() + b"]", b"-9223372036854775809", b"1" * 5000,
        b"", b"[", b'{"a": [1, {"b": "c"}], "d": "e"}',
    ],
)  # fmt: skip
def test_the_same_answers_as_orjson_for_edge_cases(raw: bytes) -> None:
    assert outcome(json_body.loads, raw) == outcome(orjson.loads, raw)


def test_a_large_body_of_millions_of_small_values_is_refused() -> None:
    numbers = orjson.dumps({"to": [[1] * 50_000 for _ in range(30)]})
    assert len(numbers) > json_body.SPLIT_BYTES
    with pytest.raises(json_body.TooLarge, match="numbers"):
        json_body.loads(numbers)
    pad = "x" * json_body.SPLIT_BYTES
    items = orjson.dumps({"pad": pad, "to": [None] * (json_body.MAX_ITEMS + 1)})
    with pytest.raises(json_body.TooLarge, match="items"):
        json_body.loads(items)


def test_deep_nesting_in_a_large_body_is_refused() -> None:
    deep = b'{"pad": "' + b"x" * json_body.SPLIT_BYTES + b'", "v": ' + b"[" * 5000 + b"]" * 5000
    with pytest.raises(json_body.TooLarge, match="nests"):
        json_body.loads(deep + b"}")
