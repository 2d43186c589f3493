"""JSON rendering and the error answer shape (decision 2)."""

from typing import Any

import orjson
from starlette.responses import Response

from opencomms.domain import errors
from opencomms.domain.errors import Problem


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(problems: list[Problem]) -> dict[str, Any]:
    return {
        "errors": [
            {
                "code": p.code,
                "message": p.message,
                "infoUrl": errors.info_url(p.code),
                "context": p.context,
            }
            for p in problems
        ]
    }


def error_response(
    status: int, problems: list[Problem], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(problems), status_code=status, headers=headers)


def one_error(status: int, code: int, message: str, context: str | None = None) -> JSONResponse:
    return error_response(status, [Problem(code, message, context)])
