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
def send_emails_schema() -> dict[str, Any]:
    """SendEmails' request schema, with decision 13 (Liquid tags) as for messages."""
    schema = copy.deepcopy(request_schema("/Emails", "post"))
    schema["properties"]["tags"] = send_messages_schema()["properties"]["tags"]
    return _with_components(schema)


@cache
def validator(name: str) -> Any:
    """A validator for a named request schema or component schema."""
    if name == "SendMessagesRequest":
        return jsonschema_rs.Draft202012Validator(send_messages_schema())
    if name == "SendEmailsRequest":
        return jsonschema_rs.Draft202012Validator(send_emails_schema())
    return jsonschema_rs.Draft202012Validator(_with_components(components()["schemas"][name]))


def validator_for(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.Draft202012Validator(_with_components(schema))
