"""What every console page shares: templates, the session check, forms, answers."""

from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from opencomms.api.deps import AppState
from opencomms.clock import rfc3339
from opencomms.console import auth
from opencomms.console.auth import FormRejected, Session, SignInRequired

templates = Environment(
    loader=PackageLoader("opencomms.console", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["when"] = rfc3339
templates.filters["path"] = lambda value: quote(str(value), safe="")

PAGE_SIZE = 25
FINAL_OPERATIONS = ("COMPLETED", "CANCELED")
MESSAGE_FILTERS = ("operationId", "sessionId", "startDate", "endDate", "channel", "status", "tags")


async def to_sign_in(request: Request, _exc: Exception) -> Response:
    target = quote(request.url.path, safe="/")
    return RedirectResponse(f"/console/login?next={target}", status_code=303)


async def form_rejected(request: Request, _exc: Exception) -> Response:
    what = "This form expired or did not come from the console: reload the page and retry"
    return page(request, "missing.html", None, 403, what=what, title="Form rejected")


def state(request: Request) -> AppState:
    state: AppState = request.app.state.opencomms
    return state


async def signed_in(request: Request) -> Session:
    session = await auth.current_session(request)
    if session is None:
        raise SignInRequired
    return session


def api_base(request: Request) -> str:
    configured = state(request).public_url
    root = configured.rstrip("/") if configured else str(request.base_url).rstrip("/")
    return root + "/v1"


def page(
    request: Request,
    template: str,
    session: Session | None,
    status_code: int = 200,
    *,
    csrf: str | None = None,
    **context: Any,
) -> HTMLResponse:
    if csrf is None:
        csrf = auth.keys(request).csrf(session.nonce) if session else ""
    html = templates.get_template(template).render(
        session=session, csrf=csrf, path=request.url.path, **context
    )
    response = HTMLResponse(html, status_code=status_code)
    auth.secure_headers(response)
    return response


async def form(request: Request) -> dict[str, str]:
    parsed = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


async def checked_form(request: Request, session: Session) -> dict[str, str]:
    fields = await form(request)
    if not auth.keys(request).csrf_ok(session.nonce, fields.get("csrf", "")):
        raise FormRejected
    return fields


def safe_next(target: str | None) -> str:
    # Only paths inside the console: never an open redirect to another site.
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return "/console/operations"
