"""The SDK's public surface is deliberate, and it stands alone: HTTP only, no server code."""

import ast
import sys
from pathlib import Path

import opencomms.client as sdk
from tests.test_layers import SRC, imports_of

PUBLIC = {
    "DEFAULT_BASE_URL",
    "FINAL_MESSAGE_STATUSES",
    "FINAL_OPERATION_STATUSES",
    "NO_RETRIES",
    "Accepted",
    "Address",
    "ApiError",
    "AsyncClient",
    "Attempt",
    "AttemptError",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ErrorDetail",
    "Message",
    "MessageContent",
    "MessageFilters",
    "MessageOperation",
    "MessageStatus",
    "MessageSummary",
    "MethodNotAllowedError",
    "NotFoundError",
    "OpenCommsError",
    "OperationFilters",
    "OperationStats",
    "OperationStatus",
    "Page",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "Recipient",
    "Related",
    "RequestTimeout",
    "RetryPolicy",
    "SandboxFilters",
    "SandboxMessage",
    "ServerError",
    "ServiceUnavailableError",
    "TransportError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "ValidationError",
    "WaitTimeout",
}
ALLOWED_THIRD_PARTY = ("httpx", "pydantic")
CLIENT = SRC / "client"


def test_all_is_the_public_surface() -> None:
    assert set(sdk.__all__) == PUBLIC
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None
    exported = {n for n in dir(sdk) if not n.startswith("_")}
    assert exported == PUBLIC, "a public name is missing from __all__, or a module leaks"


def test_the_client_imports_only_itself_the_stdlib_httpx_and_pydantic() -> None:
    offenders = []
    for path in sorted(CLIENT.rglob("*.py")):
        tree = ast.parse(path.read_text())
        relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
        assert not relative, f"{path.name}: use absolute opencomms.client imports"
        for name in imports_of(path):
            top = name.split(".")[0]
            if name == "opencomms.client" or name.startswith("opencomms.client."):
                continue
            if top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY:
                continue
            offenders.append(f"{path.name} imports {name}")
    assert not offenders


def test_only_the_command_line_uses_the_client() -> None:
    offenders = [
        f"{path.relative_to(SRC)}"
        for package in sorted(
            p for p in SRC.iterdir() if p.is_dir() and p.name not in ("cli", "client")
        )
        for path in sorted(package.rglob("*.py"))
        if any(n.startswith("opencomms.client") for n in imports_of(path))
    ]
    assert not offenders


def test_every_exception_is_an_opencomms_error() -> None:
    for name in sdk.__all__:
        value = getattr(sdk, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, sdk.OpenCommsError), name
    assert issubclass(sdk.ServiceUnavailableError, sdk.ServerError)
    assert issubclass(sdk.ValidationError, sdk.ApiError)
    assert issubclass(sdk.ConnectError, sdk.TransportError)
    assert issubclass(sdk.ConfigurationError, ValueError)


def test_importing_the_client_loads_no_server_module() -> None:
    import subprocess

    code = (
        "import sys, opencomms.client; "
        "print(sorted(m for m in sys.modules if m.startswith('opencomms.') "
        "and not m.startswith('opencomms.client')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, opencomms.client; print('sqlalchemy' in sys.modules "
            "or 'fastapi' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert heavy.stdout.strip() == "False"


def test_docs_of_public_names() -> None:
    for name in ("Client", "AsyncClient", "RetryPolicy", "ApiError", "Message"):
        assert (getattr(sdk, name).__doc__ or "").strip(), name
    assert Path(sdk.__file__).name == "__init__.py"
