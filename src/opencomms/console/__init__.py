"""The web console (`/console`) and the contract's docs page (`/docs`): server-rendered
HTML, assets vendored in the package, no build step and nothing from a CDN.

Its routes load on the first request under /console or /docs: Jinja2, the templates and the
pages' routes (some 2 MB and 30 ms) are not part of a start, nor of an API-only process."""

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from opencomms.config import Settings
from opencomms.console import auth
from opencomms.console.auth import FormRejected, SignInRequired

_PREFIXES = ("/console", "/docs")


def install(app: FastAPI, settings: Settings) -> None:
    """Adds the console's and the docs' routes and their assets to the app."""
    app.state.console_keys = auth.ConsoleKeys(settings.secret_key)
    app.router.routes.append(ConsoleRoutes(app))
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_exception_handler(FormRejected, _form_rejected)


class ConsoleRoutes(BaseRoute):
    """Stands in the app's routes for the console's and the docs' routes, which it loads on
    the first request that may be theirs and then matches and hands requests to."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._router: APIRouter | None = None

    def _loaded(self) -> APIRouter:
        if self._router is None:
            self._router = _routes(self._app)
        return self._router

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # A quick look first (a substring, so a root_path in front does not hide it): any
        # other request is none of the console's and must not load it.
        if not any(prefix in scope.get("path", "") for prefix in _PREFIXES):
            return Match.NONE, {}
        best = Match.NONE
        for route in self._loaded().routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {}
            if match is Match.PARTIAL:
                best = Match.PARTIAL
        return best, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._loaded().app(scope, receive, send)  # it matches again, and sets the route


def _routes(app: FastAPI) -> APIRouter:
    # The pages, their templates (Jinja2) and the docs' assets: only once the console is used.
    from opencomms.console import docs, inbox, pages, signin

    router = APIRouter(dependency_overrides_provider=app)
    for module in (signin, pages, inbox, docs):
        router.include_router(module.router)
    router.mount(
        "/console/static",
        StaticFiles(packages=[("opencomms.console", "static")]),
        name="console-static",
    )
    router.mount("/docs/assets", StaticFiles(directory=docs.swagger_assets()), name="docs-assets")
    return router


async def _to_sign_in(request: Request, exc: Exception) -> Response:
    from opencomms.console import web  # loaded already: only its pages raise this

    return await web.to_sign_in(request, exc)


async def _form_rejected(request: Request, exc: Exception) -> Response:
    from opencomms.console import web  # loaded already: only its pages raise this

    return await web.form_rejected(request, exc)
