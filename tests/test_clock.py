"""clock.rfc3339 against datetime's own formatting, exact to the millisecond."""

from datetime import UTC, datetime, timedelta

import pytest

from opencomms.clock import rfc3339


def by_datetime(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize(
    "ms",
    [0, 1, 999, 86_399_999, 86_400_000, -1, -86_400_001, 951_782_400_000, 1_796_347_262_363,
     253_402_300_799_999],
)  # fmt: skip
def test_formats_as_datetime_does(ms: int) -> None:
    assert rfc3339(ms) == by_datetime(ms)


def test_never_prints_the_millisecond_before() -> None:
    # Through a float, 1796347262363 / 1000 has 362999... microseconds.
    assert rfc3339(1_796_347_262_363) == "2026-12-04T01:21:02.363Z"
    assert all(
        rfc3339(ms) == by_datetime(ms) for ms in range(1_700_000_000_000, 10**12 * 2, 7_777_777_777)
    )


def test_none_is_none() -> None:
    assert rfc3339(None) is None
