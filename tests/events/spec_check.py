"""Answers checked against the vendored Event Streams spec (OpenAPI 3.0 `nullable` read as
JSON Schema type unions)."""

import copy
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml

SPEC = Path(__file__).parents[2] / "src" / "opencomms" / "spec" / "twilio_events_v1.yaml"


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k not in ("nullable", "examples")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        elif "$ref" in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = _nullable(yaml.safe_load(SPEC.read_text()))
    return loaded


def check(response: httpx.Response, path: str, method: str) -> None:
    """The answer's status is one the spec lists for the operation, and its body fits."""
    operation = document()["paths"][path][method.lower()]
    listed = operation["responses"]
    assert str(response.status_code) in listed, (response.status_code, response.text)
    content = listed[str(response.status_code)].get("content")
    if not content:
        assert response.content == b""
        return
    schema = copy.deepcopy(content["application/json"]["schema"])
    schema["components"] = document()["components"]
    jsonschema.Draft202012Validator(schema).validate(response.json())
