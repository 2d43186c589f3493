"""Schedule times (decision 7): RFC 3339, at most 30 days ahead, local time by number."""

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezone

MAX_AHEAD = timedelta(days=30)
# A time slightly in the past (clock skew, a slow client) means "now", not an error.
PAST_TOLERANCE = timedelta(minutes=5)


class ScheduleError(ValueError):
    pass


def parse_send_at(text: str) -> datetime:
    """A naive datetime for local times, an aware one when the text has an offset."""
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as error:
        raise ScheduleError(f"'{text}' is not an RFC 3339 date-time") from error
    if "T" not in text.upper():
        raise ScheduleError(f"'{text}' has no time of day")
    return moment


@lru_cache(maxsize=4096)
def _zone_for_prefix(prefix: str) -> ZoneInfo:
    try:
        number = phonenumbers.parse(prefix, None)
        zones = phone_timezone.time_zones_for_number(number)
    except phonenumbers.NumberParseException:
        return ZoneInfo("UTC")
    known = [z for z in zones if z != "Etc/Unknown"]
    return ZoneInfo(known[0]) if known else ZoneInfo("UTC")


def resolve(moment: datetime, phone: str | None) -> datetime:
    """The UTC instant of `moment`; a naive one is the recipient's local time."""
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    zone = _zone_for_prefix(phone) if phone else ZoneInfo("UTC")
    return moment.replace(tzinfo=zone).astimezone(UTC)


def check_window(instant: datetime, now: datetime) -> str | None:
    """Why `instant` cannot be scheduled, or None."""
    if instant > now + MAX_AHEAD:
        return "sendAt must be at most 30 days ahead"
    if instant < now - PAST_TOLERANCE:
        return "sendAt must not be in the past"
    return None
