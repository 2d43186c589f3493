"""The vendored OpenAPI contract, and JSON Schema validators built from it.

Request bodies are checked against the spec's own schemas (jsonschema-rs, compiled once),
so the contract and the checks cannot drift apart. The only change made to them is decision
13: tag keys and values may be Liquid, so their character set is checked after rendering.

Every start reads Twilio's file to compile the send validator: it is read from its JSON twin,
spec/twilio_comms_v1.json (written from the YAML by scripts/spec-json, kept equal to it by
tests/api/test_spec.py). Parsing the YAML took 55 ms and left 5 MB of the parser's garbage
scattered over the heap; the JSON takes 2 ms.
"""

import copy
import re
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
import orjson


def _load(name: str) -> dict[str, Any]:
    import yaml  # only the extensions' small file is read as YAML, when first needed

    text = resources.files("opencomms.spec").joinpath(name).read_text("utf-8")
    loaded: dict[str, Any] = yaml.load(text, Loader=yaml.CSafeLoader)
    return loaded


@cache
def document() -> dict[str, Any]:
    """Twilio's contract (twilio_comms_v1.yaml), read from its JSON twin."""
    loaded: dict[str, Any] = orjson.loads(
        resources.files("opencomms.spec").joinpath("twilio_comms_v1.json").read_bytes()
    )
    return loaded


@cache
def extensions() -> dict[str, Any]:
    """OpenComms' own paths and schemas (spec/opencomms_extensions.yaml)."""
    return _load("opencomms_extensions.yaml")


@cache
def served_document() -> dict[str, Any]:
    """Twilio's contract plus the extensions, each extension path under the extensions tag.

    Twilio's paths, schemas and examples are left as they are; the one schema touched is
    MessageAttempt, which gains the documented `identifier` (it allows extra properties).
    """
    merged = copy.deepcopy(document())
    extra = extensions()
    merged["tags"] = [*merged.get("tags", []), *extra["tags"]]
    merged["paths"] = {**merged["paths"], **extra["paths"]}
    for section, entries in extra["components"].items():
        merged["components"].setdefault(section, {}).update(entries)
    attempt = merged["components"]["schemas"]["MessageAttempt"]
    attempt["properties"]["identifier"] = {
        "type": ["string", "null"],
        "description": "OpenComms extension: the id the channel gave this hand-off "
        "(`GET /Messages/Seek/{identifier}` finds the message), or null before it answered.",
    }
    merged["info"] = {
        **merged["info"],
        "title": "Twilio Communications API (served by OpenComms)",
        "x-opencomms-extensions-tag": extra["tags"][0]["name"],
    }
    return merged


def components() -> dict[str, Any]:
    result: dict[str, Any] = document()["components"]
    return result


def request_schema(path: str, method: str) -> dict[str, Any]:
    operation = document()["paths"][path][method]
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    return schema


def _with_components(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "components": components()}


@cache
def send_messages_schema() -> dict[str, Any]:
    schema = copy.deepcopy(request_schema("/Messages", "post"))
    schema["properties"]["tags"] = {
        "type": "object",
        "maxProperties": 10,
        "additionalProperties": {"type": "string"},
    }
    return _with_components(schema)


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def is_date_time(value: str) -> bool:
    """RFC 3339, as `format: date-time` means; a Liquid template passes (decision 13's
    reasoning: any text field may be personalized, so only its rendering can be judged)."""
    if "{{" in value or "{%" in value:
        return True
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return False
    return True


# `format` is checked for date-times only: URLs are checked by the domain rules (they may be
# Liquid templates, which no URI grammar allows), and an e-mail check would make `oneOf`
# explanations pick the wrong branch for a phone-number address.
_FORMATS = {
    "date-time": is_date_time,
    "uri": lambda _value: True,
    "email": lambda _value: True,
}


def _compiled(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.Draft202012Validator(schema, formats=_FORMATS, validate_formats=True)


@cache
def request_body(path: str, method: str) -> dict[str, Any]:
    """An operation's request schema with the components its `$ref`s point into.

    One change, to ResolveSenders: its pool form does not forbid `senderAddresses`, so a body
    of the addresses form would match both forms of its `oneOf` and be refused whatever it
    held. The pool form is made to exclude it, as the two forms' titles mean.
    """
    schema = copy.deepcopy(request_schema(path, method))
    if (path, method) == ("/Senders/Resolve", "post"):
        schema["oneOf"][0]["not"] = {"required": ["senderAddresses"]}
    if (path, method) == ("/Emails", "post"):
        # Decision 13, as for messages: tags may be Liquid, checked once rendered.
        schema["properties"]["tags"] = send_messages_schema()["properties"]["tags"]
    return _with_components(schema)


@cache
def request_validator(path: str, method: str) -> Any:
    return jsonschema_rs.Draft202012Validator(request_body(path, method))


@cache
def validator(name: str) -> Any:
    """A validator for a named request schema or component schema."""
    if name == "SendMessagesRequest":
        return _compiled(send_messages_schema())
    return _compiled(_with_components(components()["schemas"][name]))


@cache
def extension_validator(name: str) -> Any:
    """A validator for a request schema of the extensions (which may use Twilio's parts)."""
    schema = served_document()["components"]["schemas"][name]
    return jsonschema_rs.Draft202012Validator(
        {**schema, "components": served_document()["components"]}
    )


def validator_for(schema: dict[str, Any]) -> Any:
    return _compiled(_with_components(schema))
