"""Reading recipients for `opencomms send`: arguments, CSV files, key=value options."""

from pathlib import Path

import pytest

from opencomms.cli.recipients import RecipientsError, from_arguments, from_csv, parse_pairs
from opencomms.client import Recipient


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_columns_become_variables_and_empty_cells_are_left_out(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Phone, name ,city,channel\n+14155550100,Ada,London,\n+14155550101, Grace ,,WHATSAPP\n",
    )
    assert from_csv(path, "PHONE", {"team": "ops", "city": "Rome"}) == [
        Recipient("+14155550100", "PHONE", {"team": "ops", "city": "London", "name": "Ada"}),
        Recipient("+14155550101", "WHATSAPP", {"team": "ops", "city": "Rome", "name": "Grace"}),
    ]


def test_a_bom_and_other_address_column_names(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffnumber,code\n+14155550100,1\n".encode())
    assert from_csv(path, "PHONE", {}) == [Recipient("+14155550100", "PHONE", {"code": "1"})]


def test_cells_beyond_the_header_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "address,name\n+14155550100,Ada,extra,more\n+14155550101\n")
    assert [r.variables for r in from_csv(path, "PHONE", {})] == [{"name": "Ada"}, {}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name\nAda\n", "needs a column named one of address, to, phone, number"),
        ("address,name\n", "no rows under the header"),
        ("", "no rows under the header"),
        ("address,name\n+14155550100,Ada\n,Bob\n", "people.csv:3: the address cell is empty"),
    ],
)
def test_unusable_files_say_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RecipientsError, match=message):
        from_csv(write(tmp_path, text), "PHONE", {})


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(RecipientsError, match="No such file"):
        from_csv(tmp_path / "missing.csv", "PHONE", {})
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"address\n\xff\xfe\x00\n")
    with pytest.raises(RecipientsError):
        from_csv(binary, "PHONE", {})


def test_arguments_and_pairs() -> None:
    assert from_arguments(["+14155550100"], "PHONE", {"a": "1"}) == [
        Recipient("+14155550100", "PHONE", {"a": "1"})
    ]
    assert parse_pairs(["a=1", "b=x=y", "c="], "--var") == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(RecipientsError, match="--var takes key=value"):
        parse_pairs(["novalue"], "--var")
    with pytest.raises(RecipientsError):
        parse_pairs(["=1"], "--var")
