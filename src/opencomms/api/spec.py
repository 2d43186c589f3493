"""The vendored OpenAPI contract, and JSON Schema validators built from it.

Request bodies are checked against the spec's own schemas (jsonschema-rs, compiled once),
so the contract and the checks cannot drift apart. The only change made to them is decision
13: tag keys and values may be Liquid, so their character set is checked after rendering.
"""

import copy
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
import yaml


@cache
def document() -> dict[str, Any]:
    text = resources.files("opencomms.spec").joinpath("twilio_comms_v1.yaml").read_text("utf-8")
    loaded: dict[str, Any] = yaml.load(text, Loader=yaml.CSafeLoader)
    return loaded


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
    return _with_components(schema)


@cache
def request_validator(path: str, method: str) -> Any:
    return jsonschema_rs.Draft202012Validator(request_body(path, method))


@cache
def validator(name: str) -> Any:
    """A validator for a named request schema or component schema."""
    if name == "SendMessagesRequest":
        return jsonschema_rs.Draft202012Validator(send_messages_schema())
    return jsonschema_rs.Draft202012Validator(_with_components(components()["schemas"][name]))


def validator_for(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.Draft202012Validator(_with_components(schema))
