"""The contract, served: Twilio's OpenAPI file plus OpenComms' documented extensions."""

from functools import lru_cache
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from opencomms.api import spec

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    configured = request.app.state.opencomms.public_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def _with_servers(root: str) -> dict[str, Any]:
    # Requests made from the docs page go to this server, not to Twilio's.
    return {
        **spec.served_document(),
        "servers": [
            {"url": f"{root}/v1", "description": "This OpenComms server"},
            {"url": f"{root}/preview", "description": "The same handlers under /preview"},
        ],
    }


# Keyed by the Host a client used: bounded, so varied Host headers cannot grow it.
@lru_cache(maxsize=8)
def _json(root: str) -> bytes:
    return orjson.dumps(_with_servers(root))


@lru_cache(maxsize=8)
def _yaml(root: str) -> bytes:
    import yaml  # PyYAML only for the clients that ask for YAML

    text = yaml.dump(_with_servers(root), Dumper=yaml.CSafeDumper, sort_keys=False)
    return text.encode()


@router.get("/v1/openapi.json")
@router.get("/preview/openapi.json")
async def openapi_json(request: Request) -> Response:
    """The served contract as JSON."""
    return Response(_json(_root(request)), media_type="application/json")


@router.get("/v1/openapi.yaml")
@router.get("/preview/openapi.yaml")
async def openapi_yaml(request: Request) -> Response:
    """The served contract as YAML."""
    return Response(_yaml(_root(request)), media_type="application/yaml")
