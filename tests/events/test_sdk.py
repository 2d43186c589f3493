"""Twilio's own Python SDK, its events domain pointed at us: create a sink, test and validate
it, subscribe, list types. The SDK is synchronous, so it runs in a thread beside our server."""

import asyncio

from twilio.request_validator import RequestValidator
from twilio.rest import Client

from opencomms.api.app import create_app
from opencomms.config import Settings
from opencomms.events import types
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database
from tests.conftest import SECRET
from tests.events.helpers import deliverer, settle
from tests.events.receiver import receiver, serving


async def test_the_twilio_sdk_creates_validates_and_subscribes(
    db: Database, account: NewCredential
) -> None:
    app = create_app(db, Settings(secret_key=SECRET))
    async with serving(app) as port, receiver() as hook:
        client = Client(account.sid, account.secret)
        client.events.base_url = f"http://127.0.0.1:{port}"
        v1 = client.events.v1

        sink = await asyncio.to_thread(
            v1.sinks.create,
            description="SDK sink",
            sink_configuration={"destination": hook.url, "method": "POST", "batch_events": False},
            sink_type="webhook",
        )
        assert sink.sid.startswith("DG") and sink.status == "initialized"
        test = await asyncio.to_thread(v1.sinks(sink.sid).sink_test.create)
        assert test.result == "submitted"

        await settle(deliverer(db))
        [received] = hook.requests
        [event] = received.events()
        assert event["type"] == types.TEST_EVENT
        signed_url = f"http://127.0.0.1:{hook.port}{received.path}"
        validator = RequestValidator(account.secret)
        body = received.body.decode()
        assert validator.validate(signed_url, body, received.headers["x-twilio-signature"])

        valid = await asyncio.to_thread(
            v1.sinks(sink.sid).sink_validate.create, test_id=event["id"]
        )
        assert valid.result == "valid"
        fetched = await asyncio.to_thread(v1.sinks(sink.sid).fetch)
        assert fetched.status == "active"

        delivered = "com.twilio.comms-api.message.delivered"
        sub = await asyncio.to_thread(
            v1.subscriptions.create,
            description="SDK subscription",
            sink_sid=sink.sid,
            types=[{"type": delivered, "schema_version": 1}],
        )
        assert sub.sink_sid == sink.sid
        subscribed = await asyncio.to_thread(v1.subscriptions(sub.sid).subscribed_events.list)
        assert [s.type for s in subscribed] == [delivered]

        listed = await asyncio.to_thread(v1.event_types.list, page_size=4)
        assert {t.type for t in listed} == set(types.ALL_TYPES)  # followed next_page_url
        sinks = await asyncio.to_thread(v1.sinks.list)
        assert [s.sid for s in sinks] == [sink.sid]
        schema = await asyncio.to_thread(v1.schemas(types.MESSAGE_SCHEMA).fetch)
        assert schema.latest_version == 1
