"""`/docs`: Swagger UI over the served contract, from assets vendored in a pinned package."""

from importlib import resources
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from starlette.responses import HTMLResponse

from opencomms.console.auth import secure_headers

router = APIRouter(include_in_schema=False)

# Swagger UI sets inline styles on its own elements, so styles may be inline here; scripts
# still come only from this server.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OpenComms API: Twilio Communications API v1</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" href="/docs/assets/favicon.png">
</head>
<body>
<div id="swagger-ui" data-spec-url="/v1/openapi.json"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/console/static/docs-init.js"></script>
</body>
</html>
"""


def swagger_assets() -> Path:
    """The swagger-ui files fastapi-offline ships (its only use here)."""
    return Path(str(resources.files(fastapi_offline) / "static"))


@router.get("/docs")
async def docs_page() -> HTMLResponse:
    response = HTMLResponse(_PAGE)
    secure_headers(response, DOCS_CSP)
    return response
