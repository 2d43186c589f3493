"""Response checks against the spec's own schemas."""

from typing import Any

from opencomms.api import spec


def assert_conforms(body: Any, schema_name: str) -> None:
    errors = [e.message for e in spec.validator(schema_name).iter_errors(body)]
    assert not errors, f"{schema_name}: {errors[:5]}"


def response_schema(path: str, method: str, status: str) -> dict[str, Any]:
    operation = spec.document()["paths"][path][method]
    schema: dict[str, Any] = operation["responses"][status]["content"]["application/json"]["schema"]
    return schema


def assert_response_conforms(body: Any, path: str, method: str, status: str = "200") -> None:
    validator = spec.validator_for(response_schema(path, method, status))
    errors = [e.message for e in validator.iter_errors(body)]
    assert not errors, f"{method.upper()} {path} {status}: {errors[:5]}"


def send_examples() -> dict[str, dict[str, Any]]:
    operation = spec.document()["paths"]["/Messages"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    return {name: example["value"] for name, example in examples.items()}
