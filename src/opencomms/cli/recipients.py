"""Recipients for `opencomms send`: numbers given as arguments, or rows of a CSV file."""

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

from opencomms.client import Recipient

ADDRESS_COLUMNS = ("address", "to", "phone", "number")
CHANNEL_COLUMN = "channel"


class RecipientsError(ValueError):
    """The recipients given cannot be read; the message says where."""


def parse_pairs(pairs: Sequence[str], option: str) -> dict[str, str]:
    """`key=value` options as a dict."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RecipientsError(f"{option} takes key=value, not {pair!r}")
        values[key] = value
    return values


def from_arguments(
    addresses: Sequence[str], channel: str, variables: Mapping[str, str]
) -> list[Recipient]:
    return [Recipient(a, channel, dict(variables)) for a in addresses]


def from_csv(path: Path, channel: str, defaults: Mapping[str, str]) -> list[Recipient]:
    """A header row, one column for the address, an optional `channel`, the rest variables.

    An empty cell leaves its variable out, so the template's `default` filter applies (and a
    template without one gets the server's error naming that recipient).
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            rows = list(reader)
            header = [name.strip() for name in reader.fieldnames or []]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RecipientsError(f"{path}: {error}") from error
    if not rows:
        raise RecipientsError(f"{path}: no rows under the header")
    lowered = {name.lower(): name for name in header}
    address_column = next((lowered[c] for c in ADDRESS_COLUMNS if c in lowered), None)
    if address_column is None:
        raise RecipientsError(f"{path}: needs a column named one of {', '.join(ADDRESS_COLUMNS)}")
    channel_column = lowered.get(CHANNEL_COLUMN)
    recipients = []
    for line, row in enumerate(rows, start=2):
        # A row longer than the header puts its extra cells under the key None: ignored.
        cells = {k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}
        address = cells.get(address_column, "")
        if not address:
            raise RecipientsError(f"{path}:{line}: the {address_column} cell is empty")
        variables = dict(defaults)
        for name, value in cells.items():
            if name not in (address_column, channel_column) and value:
                variables[name] = value
        row_channel = cells.get(channel_column, "") if channel_column else ""
        recipients.append(Recipient(address, row_channel or channel, variables))
    return recipients
