"""Turns JSON Schema violations into the spec's error entries, with a path for each.

A bare `oneOf` failure says nothing useful ("not valid under any of the schemas"), so it is
explained: the branch the caller most plausibly meant (by the properties they sent) is
validated on its own and its violations are reported instead.
"""

from functools import cache
from typing import Any

from opencomms import templating
from opencomms.api import spec
from opencomms.domain import errors
from opencomms.domain.errors import Problem

_MAX_MESSAGE = 300
_validators: dict[int, Any] = {}


def json_path(prefix: str, parts: list[str | int]) -> str:
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


_EXPLAINED = 1000  # past this many, problems are only located, not explained


MAX_DEPTH = 32  # no field of the spec nests half as deep


def too_deep_path(value: Any) -> str | None:
    """The path of the first point nested deeper than MAX_DEPTH, if any (no recursion)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "$")]
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            return path
        if isinstance(node, dict):
            stack.extend((v, depth + 1, f"{path}.{k}") for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(node))
    return None


def _too_deep(body: Any) -> list[Problem]:
    message = f"The value nests deeper than {MAX_DEPTH} levels"
    return [Problem(errors.INVALID_PARAMETER, message, too_deep_path(body) or "$")]


def check_send_request(body: Any) -> list[Problem]:
    """Every way a SendMessages body breaks the spec's schema, each with its JSON path."""
    try:
        if _is_valid_send(body):
            return []
        return _schema_problems(body)
    except ValueError:
        # The validator gives up on very deep values ("Recursion limit reached"); only then
        # is the body walked, so the common case pays nothing for the check.
        return _too_deep(body)


_WHOLE_RECIPIENTS = 100  # up to this many, one validator call checks the whole body
# Past it, recipients are checked this many per call: few enough that no call holds the
# interpreter long (a 256-item call of large recipients: about 2 ms), enough that the calls
# cost little (one per recipient took 6.2 ms of 10,000, 256 per call 4.5 ms).
_RECIPIENTS_PER_CALL = 256


def _is_valid_send(body: Any) -> bool:
    """`is_valid` for the whole body, recipients checked _RECIPIENTS_PER_CALL per call past
    _WHOLE_RECIPIENTS: one native call for a 19 MB body holds the interpreter (and the event
    loop) 20-100 ms. The same answer, as `to` has no constraint across its items beyond
    their count."""
    recipients = body.get("to") if isinstance(body, dict) else None
    if not isinstance(recipients, list) or len(recipients) <= _WHOLE_RECIPIENTS:
        return bool(spec.validator("SendMessagesRequest").is_valid(body))
    limit = _root()["properties"]["to"].get("maxItems")
    if limit is not None and len(recipients) > limit:
        return False
    if not spec.validator("SendMessagesRequest").is_valid({**body, "to": recipients[:1]}):
        return False
    items = _recipients_validator()
    step = _RECIPIENTS_PER_CALL
    return all(items.is_valid(recipients[i : i + step]) for i in range(0, len(recipients), step))


def _schema_problems(body: Any) -> list[Problem]:
    """The problems of an invalid body, recipient by recipient.

    Collecting every error of 10,000 bad recipients in one call of the validator takes
    seconds of native code that holds the interpreter; one recipient at a time keeps each
    call short (the caller runs this on a thread, so the event loop gets its turns) and lets
    the explanations stop at `_EXPLAINED`.
    """
    recipients = body.get("to") if isinstance(body, dict) else None
    if not isinstance(recipients, list) or not recipients:
        return _explained(spec.validator("SendMessagesRequest"), body, "$", _root())
    problems = _explained(spec.validator("SendMessagesRequest"), {**body, "to": []}, "$", _root())
    problems = [p for p in problems if p.context != "$.to"]  # minItems: `to` is not empty
    limit = _root()["properties"]["to"].get("maxItems")
    if limit is not None and len(recipients) > limit:
        message = f"at most {limit} recipients are allowed ({len(recipients)} given)"
        problems.append(Problem(errors.INVALID_PARAMETER, message, "$.to"))
    item_schema = _recipient_schema()
    item = _recipient_validator()
    for index, recipient in enumerate(recipients):
        if item.is_valid(recipient):
            continue
        where = f"$.to[{index}]"
        if len(problems) < _EXPLAINED:
            problems += _explained(item, recipient, where, item_schema)
        else:
            problems.append(Problem(errors.INVALID_PARAMETER, "is not a valid recipient", where))
    return problems


def check_request(path: str, method: str, body: Any) -> list[Problem]:
    """Every way a request body breaks its operation's schema in the spec, with paths."""
    return _check(spec.request_body(path, method), spec.request_validator(path, method), body)


def _check(schema: dict[str, Any], validator: Any, body: Any) -> list[Problem]:
    problems: list[Problem] = []
    for error in validator.iter_errors(body):
        if len(problems) < _EXPLAINED:
            problems.extend(_translate(error, body, "$", schema))
        else:
            where = json_path("$", list(error.instance_path))
            problems.append(Problem(errors.INVALID_PARAMETER, _short(error.message), where))
    return problems


def warm_up() -> None:
    """Compiles the validators now: compiling holds the interpreter for a while, which must
    not happen inside the first request."""
    spec.validator("SendMessagesRequest")
    _recipient_validator()
    _recipients_validator()
    templating.warm_up()


def _root() -> dict[str, Any]:
    return spec.send_messages_schema()


def _recipient_schema() -> dict[str, Any]:
    schema: dict[str, Any] = _root()["properties"]["to"]["items"]
    return schema


@cache
def _recipient_validator() -> Any:
    return spec.validator_for(_recipient_schema())


@cache
def _recipients_validator() -> Any:
    """For a slice of `to`: each item a recipient."""
    return spec.validator_for({"type": "array", "items": _recipient_schema()})


def _explained(validator: Any, instance: Any, prefix: str, schema: Any) -> list[Problem]:
    return [
        p for e in validator.iter_errors(instance) for p in _translate(e, instance, prefix, schema)
    ]


def _translate(
    error: Any, root_instance: Any, prefix: str, root_schema: dict[str, Any]
) -> list[Problem]:
    kind = type(error.kind).__name__
    path = list(error.instance_path)
    where = json_path(prefix, path)
    if kind == "AdditionalProperties":
        return [
            Problem(errors.UNKNOWN_PARAMETER, f"Unknown parameter '{name}'", f"{where}.{name}")
            for name in error.kind.unexpected
        ]
    if kind == "Required":
        name = error.kind.property
        return [Problem(errors.INVALID_PARAMETER, f"'{name}' is required", f"{where}.{name}")]
    if kind in ("OneOfNotValid", "OneOfMultipleValid"):
        branches = _walk(root_schema, error.schema_path)
        return explain_one_of(branches, _at(root_instance, path), where)
    return [Problem(errors.INVALID_PARAMETER, _short(error.message), where)]


def _short(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def _at(instance: Any, path: list[str | int]) -> Any:
    for part in path:
        instance = instance[part]
    return instance


def _resolve(schema: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = spec.components()["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _walk(root: Any, schema_path: list[str | int]) -> list[Any]:
    """The `oneOf` list a schema path ends at, following `$ref`s.

    Past a `$ref`, paths may continue from the referenced schema or restart at the document
    root (`components/...`); both are followed.
    """
    node: Any = root
    for part in schema_path:
        if part == "$ref":
            continue
        node = {"components": spec.components()} if part == "components" else _resolve(node)
        node = node[part]
    return [_resolve(branch) for branch in node]


def _branch_score(branch: dict[str, Any], keys: set[str]) -> tuple[int, int, int]:
    required = set(branch.get("required", []))
    properties = set(branch.get("properties", {}))
    return (int(required <= keys), len(keys & properties), -len(required - keys))


def explain_one_of(branches: list[Any], instance: Any, where: str) -> list[Problem]:
    forms = " | ".join(
        "{" + ", ".join(b.get("required", sorted(b.get("properties", {})))) + "}" for b in branches
    )
    if not isinstance(instance, dict):
        return [Problem(errors.INVALID_PARAMETER, f"must be an object, one of: {forms}", where)]
    keys = set(instance)
    best = max(branches, key=lambda b: _branch_score(b, keys))
    if not keys & set(best.get("properties", {})):
        return [Problem(errors.INVALID_PARAMETER, f"must be one of: {forms}", where)]
    validator = _validators.get(id(best))
    if validator is None:
        validator = _validators.setdefault(id(best), spec.validator_for(best))
    problems = [
        p for e in validator.iter_errors(instance) for p in _translate_in(e, instance, where, best)
    ]
    return problems or [
        Problem(errors.INVALID_PARAMETER, f"matches more than one form; use one of: {forms}", where)
    ]


def _translate_in(error: Any, instance: Any, where: str, branch: dict[str, Any]) -> list[Problem]:
    kind = type(error.kind).__name__
    if kind in ("OneOfNotValid", "OneOfMultipleValid"):
        path = list(error.instance_path)
        branches = _walk(branch, error.schema_path)
        return explain_one_of(branches, _at(instance, path), json_path(where, path))
    return _translate(error, instance, where, branch)


def nul_problems(body: Any, where: str = "$") -> list[Problem]:
    """Strings holding NUL, which PostgreSQL text cannot store or compare: refused up front."""
    if isinstance(body, str):
        if "\x00" in body:
            return [Problem(errors.INVALID_PARAMETER, "must not contain NUL characters", where)]
        return []
    if isinstance(body, list):
        return [p for i, item in enumerate(body) for p in nul_problems(item, f"{where}[{i}]")]
    if isinstance(body, dict):
        return [p for key, item in body.items() for p in nul_problems(item, f"{where}.{key}")]
    return []


def check_extension_request(schema_name: str, body: Any) -> list[Problem]:
    """Every way a body breaks one of the extensions' request schemas (no `oneOf` there)."""
    validator = spec.extension_validator(schema_name)
    schema = spec.served_document()["components"]["schemas"][schema_name]
    return [p for e in validator.iter_errors(body) for p in _translate(e, body, "$", schema)]
