"""The application factory."""

from fastapi import FastAPI

from opencomms import __version__, console
from opencomms.api import (
    body_check,
    contract,
    emails,
    errors,
    event_streams,
    event_types,
    health,
    messages,
    operations,
    sandbox,
    sandbox_emails,
    sender_pools,
    senders,
)
from opencomms.api.deps import AppState
from opencomms.api.fast_path import FastPath
from opencomms.api.idempotency import Idempotency
from opencomms.api.limits import BodyGuard
from opencomms.api.ratelimit import Limits, RateLimit, RateLimiter
from opencomms.api.requestlog import RequestLog
from opencomms.config import Settings
from opencomms.store.accounts import SecretBox
from opencomms.store.analyze import StatsKeeper
from opencomms.store.db import Database

API_PREFIXES = ("/v1", "/preview")  # decision 5: /preview serves the same handlers


def create_app(db: Database, settings: Settings, limits: Limits | None = None) -> FastAPI:
    app = FastAPI(
        title="OpenComms",
        version=__version__,
        description="Twilio's Communications API v1, self-hosted.",
        # The served contract is Twilio's (api/contract.py), not one derived from the routes.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.opencomms = AppState(
        db=db,
        box=SecretBox(settings.secret_key),
        public_url=settings.public_url,
        settings=settings,
        stats=StatsKeeper(db),
        limiter=RateLimiter(db, limits or Limits.of(settings.limits)),
    )
    errors.install(app)
    app.include_router(health.router)
    for prefix in API_PREFIXES:
        # Operations first: "/Messages/Operations" must not be taken for a message id.
        app.include_router(operations.router, prefix=prefix)
        app.include_router(messages.router, prefix=prefix)
        app.include_router(emails.router, prefix=prefix)
        app.include_router(senders.router, prefix=prefix)
        app.include_router(sender_pools.router, prefix=prefix)
        app.include_router(sandbox.router, prefix=prefix)
        app.include_router(sandbox_emails.router, prefix=prefix)
    app.include_router(event_streams.router, prefix="/v1")  # events: Twilio's Event Streams
    app.include_router(event_types.router, prefix="/v1")
    app.include_router(contract.router)
    console.install(app, settings)
    # Added first, so it runs inside the guards added after it.
    app.add_middleware(FastPath, state=app.state.opencomms)
    app.add_middleware(Idempotency)
    app.add_middleware(RateLimit)
    app.add_middleware(
        BodyGuard, max_bytes=settings.max_body_bytes, form_prefixes=event_streams.FORM_PREFIXES
    )
    app.add_middleware(RequestLog)  # outermost: it sees every answer, refusals included
    body_check.warm_up()
    return app
