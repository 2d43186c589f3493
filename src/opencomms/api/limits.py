"""Request guards that must run before a body is read: NUL characters, size, content type."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opencomms.api.responses import one_error
from opencomms.domain import errors

_JSON_TYPES = ("application/json",)
_FORM_TYPE = "application/x-www-form-urlencoded"
# The console's pages post HTML forms; everything else speaks JSON only.
FORM_PREFIX = "/console/"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _media(content_type: str | None) -> str:
    return "" if content_type is None else content_type.split(";", 1)[0].strip().lower()


def _has_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"%00" in query or b"\x00" in query


def _is_json(content_type: str | None) -> bool:
    media = _media(content_type)
    return media in _JSON_TYPES or media.endswith("+json")


def _accepted(scope: Scope, content_type: str | None) -> bool:
    if str(scope.get("path", "")).startswith(FORM_PREFIX):
        return _media(content_type) == _FORM_TYPE
    return _is_json(content_type)


class BodyGuard:
    """Rejects oversized bodies with 413 and non-JSON bodies with 415 (except under
    `form_prefixes`: Twilio-style APIs whose handlers take form-encoded bodies)."""

    def __init__(self, app: ASGIApp, max_bytes: int, form_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.form_prefixes = form_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            # No identifier or filter of ours holds a NUL, and PostgreSQL text cannot: refuse
            # it here rather than let a driver error become a 500.
            response = one_error(
                400, errors.INVALID_PARAMETER, "The path and query must not contain NUL"
            )
            await response(scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        has_body = length not in (None, "0") or _header(scope, b"transfer-encoding") is not None
        is_form_api = str(scope.get("path", "")).startswith(self.form_prefixes)
        if has_body and not is_form_api and not _accepted(scope, _header(scope, b"content-type")):
            response = one_error(
                415, errors.UNSUPPORTED_MEDIA_TYPE, "Send the body as application/json"
            )
            response.headers["Connection"] = "close"  # the body was never read
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = one_error(
            413, errors.PAYLOAD_TOO_LARGE, f"The body exceeds {self.max_bytes} bytes"
        )
        response.headers["Connection"] = "close"  # the body was never read
        await response(scope, receive, send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge
            return message

        return counted


class BodyTooLarge(Exception):
    """A chunked body grew past the limit while it was read."""
