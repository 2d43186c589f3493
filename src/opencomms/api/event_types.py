"""Event Streams: the event types OpenComms publishes and the JSON Schemas of their data."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from opencomms.api import twilio_style
from opencomms.api.deps import Account, BaseUrl
from opencomms.api.responses import JSONResponse
from opencomms.domain.errors import NotFound
from opencomms.events import types
from opencomms.events.types import EventType

router = APIRouter(tags=["Events"])

Page = Annotated[int | None, Query(alias="Page")]
PageSize = Annotated[int | None, Query(alias="PageSize")]
PageToken = Annotated[str | None, Query(alias="PageToken")]


def _type_body(kind: EventType, base: str) -> dict[str, Any]:
    published = twilio_style.iso(types.PUBLISHED_AT)
    return {
        "type": kind.type,
        "schema_id": kind.schema_id,
        "date_created": published,
        "date_updated": published,
        "description": kind.description,
        "status": "available",
        "documentation_url": None,
        "url": f"{base}/Types/{kind.type}",
        "links": {"schema": f"{base}/Schemas/{kind.schema_id}/Versions"},
    }


def _version_body(schema_id: str, base: str) -> dict[str, Any]:
    url = f"{base}/Schemas/{schema_id}/Versions/{types.SCHEMA_VERSION}"
    return {
        "id": schema_id,
        "schema_version": types.SCHEMA_VERSION,
        "date_created": twilio_style.iso(types.PUBLISHED_AT),
        "url": url,
        "raw": f"{url}/Raw",
    }


def _schema_id(schema_id: str) -> str:
    if schema_id not in types.SCHEMAS:
        raise NotFound(f"Schema {schema_id}")
    return schema_id


@router.get("/Types")
async def list_types(
    _account: Account,
    base: BaseUrl,
    schema_id: Annotated[str | None, Query(alias="SchemaId")] = None,
    page: Page = None,
    page_size: PageSize = None,
    _token: PageToken = None,
) -> Any:
    """List the event types that sinks can subscribe to."""
    number, size = twilio_style.page_window(page, page_size)
    kinds = [k for k in types.ALL_TYPES.values() if schema_id in (None, k.schema_id)]
    window = kinds[number * size : (number + 1) * size + 1]
    query = {"SchemaId": schema_id} if schema_id else {}
    body = twilio_style.listing(
        "types", [_type_body(k, base) for k in window], f"{base}/Types", number, size, query
    )
    return JSONResponse(body)


@router.get("/Types/{type_name}")
async def fetch_type(type_name: str, _account: Account, base: BaseUrl) -> Any:
    """Fetch one event type."""
    kind = types.ALL_TYPES.get(type_name)
    if kind is None:
        raise NotFound(f"Type {type_name}")
    return JSONResponse(_type_body(kind, base))


@router.get("/Schemas/{schema_id}")
async def fetch_schema(schema_id: str, _account: Account, base: BaseUrl) -> Any:
    """Fetch a schema: its id and latest version."""
    schema_id = _schema_id(schema_id)
    return JSONResponse(
        {
            "id": schema_id,
            "url": f"{base}/Schemas/{schema_id}",
            "links": {"versions": f"{base}/Schemas/{schema_id}/Versions"},
            "latest_version_date_created": twilio_style.iso(types.PUBLISHED_AT),
            "latest_version": types.SCHEMA_VERSION,
        }
    )


@router.get("/Schemas/{schema_id}/Versions")
async def list_schema_versions(
    schema_id: str,
    _account: Account,
    base: BaseUrl,
    page: Page = None,
    page_size: PageSize = None,
    _token: PageToken = None,
) -> Any:
    """List a schema's versions."""
    schema_id = _schema_id(schema_id)
    number, size = twilio_style.page_window(page, page_size)
    items = [_version_body(schema_id, base)] if number == 0 else []
    url = f"{base}/Schemas/{schema_id}/Versions"
    return JSONResponse(twilio_style.listing("schema_versions", items, url, number, size))


def _version(schema_id: str, version: str) -> str:
    schema_id = _schema_id(schema_id)
    if version != str(types.SCHEMA_VERSION):
        raise NotFound(f"Schema version {schema_id}/{version}")
    return schema_id


@router.get("/Schemas/{schema_id}/Versions/{version}")
async def fetch_schema_version(
    schema_id: str, version: str, _account: Account, base: BaseUrl
) -> Any:
    """Fetch a schema version; `raw` is the URL of its JSON Schema."""
    return JSONResponse(_version_body(_version(schema_id, version), base))


@router.get("/Schemas/{schema_id}/Versions/{version}/Raw")
async def raw_schema(schema_id: str, version: str) -> Any:
    """The JSON Schema of the events' `data` (public, like the `dataschema` it answers)."""
    return JSONResponse(types.SCHEMAS[_version(schema_id, version)])
