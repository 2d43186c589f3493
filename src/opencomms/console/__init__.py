"""The web console (`/console`) and the contract's docs page (`/docs`): server-rendered
HTML, assets vendored in the package, no build step and nothing from a CDN."""

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from opencomms.config import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """Adds the console's and the docs' routes and their assets to the app."""
    from opencomms.console import auth, docs, inbox, pages, signin, web

    app.state.console_keys = auth.ConsoleKeys(settings.secret_key)
    for module in (signin, pages, inbox, docs):
        app.include_router(module.router)
    app.add_exception_handler(web.SignInRequired, web.to_sign_in)
    app.add_exception_handler(web.FormRejected, web.form_rejected)
    app.mount(
        "/console/static",
        StaticFiles(packages=[("opencomms.console", "static")]),
        name="console-static",
    )
    app.mount("/docs/assets", StaticFiles(directory=docs.swagger_assets()), name="docs-assets")
