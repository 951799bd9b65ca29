"""The clinic's refusals in one form, ``{"detail": ...}``, whatever the input was.

The framework's own 422 echoes each refused value back (``input``): a lone surrogate in it (JSON's ``"\\ud800"``)
cannot be encoded as UTF-8, so the refusal itself would fail with a 500, and a refused 100 KB string would be
sent back whole. The clinic's routes answer each error's place, message and type only. A body the JSON decoder
gives up on (nested too deeply) is a 422 like any other body that is not JSON, not the framework's 400."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

# What the framework says when decoding the body raised something other than a JSON error (RecursionError).
UNPARSED_BODY = "There was an error parsing the body"


def _text(value: Any) -> str:
    return str(value).encode("utf-8", "replace").decode("utf-8")


def _place(part: Any) -> str | int:
    return part if isinstance(part, int) else _text(part)


def errors_out(errors: Any) -> list[dict[str, Any]]:
    return [
        {
            "loc": [_place(p) for p in error.get("loc", ())],
            "msg": _text(error.get("msg", "")),
            "type": _text(error.get("type", "value_error")),
        }
        for error in errors
    ]


class ClinicRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def clinic_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse({"detail": errors_out(exc.errors())}, status_code=422)
            except StarletteHTTPException as exc:
                if exc.status_code == 400 and exc.detail == UNPARSED_BODY:
                    refused = [
                        {"loc": ["body"], "msg": "not a JSON object, or nested too deeply", "type": "json_invalid"}
                    ]
                    return JSONResponse({"detail": refused}, status_code=422)
                raise

        return clinic_handler
