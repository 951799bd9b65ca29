"""The Nightscout router: its routes answer a refused credential with Nightscout's own 401 and are found under
every spelling Nightscout clients use; what every upload shares (reading the documents, handing their readings to
the ingest service, the receipt in headers)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from ingest.body import BodyError, parse_json, read_body, refusal_reason
from ingest.nightscout.auth import UNAUTHORIZED, Unauthorized
from ingest.nightscout.documents import header_text
from ingest.readings import DeviceContext, Submission
from ingest.service import IngestService, Receipt, WithinTransaction

SOURCE = "nightscout"


class NightscoutRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthorized:
                return JSONResponse(UNAUTHORIZED, status_code=401)

        return route


router = APIRouter(prefix="/ns/api/v1", tags=["nightscout"], route_class=NightscoutRoute)


def route(method: str, path: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``path`` and its Nightscout spellings: with a trailing slash and with ``.json`` (the documented
    one is ``path``). FastAPI would answer the slashed form with a 307 redirect, which OkHttp-based uploaders do
    not follow on a POST: the upload would fail."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(path, endpoint, methods=[method], **options)
        hidden = {k: v for k, v in options.items() if k not in ("summary", "responses")}
        for alias in (f"{path}/", f"{path}.json"):
            router.add_api_route(alias, endpoint, methods=[method], include_in_schema=False, **hidden)
        return endpoint

    return register


UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or wrong api-secret, or a disabled device"},
    413: {"description": "body too large"},
    422: {"description": "body is not JSON, or neither an object nor an array"},
}


async def read_docs(
    request: Request, sender: DeviceContext, ingest: IngestService, *, record: bool = True
) -> list[Any]:
    """The uploaded documents: a JSON object is one, an array many. A refused body is recorded (unless
    ``record`` is false: a preview), then raised."""
    settings = request.app.state.services.settings
    try:
        body = await read_body(request, settings.max_body_bytes)
        payload = parse_json(body)
        if isinstance(payload, dict):
            return [payload]
        if not isinstance(payload, list):
            raise BodyError(
                422,
                [{"loc": ["body"], "msg": "expected a Nightscout document or an array of them", "type": "model_type"}],
                body,
            )
        if len(payload) > settings.max_batch_readings:
            raise BodyError(
                413, f"{len(payload)} documents in one request; at most {settings.max_batch_readings}", body[:256]
            )
        return payload
    except BodyError as exc:
        if record:
            await ingest.reject(SOURCE, sender.device_id, refusal_reason(exc), exc.raw)
        raise


async def receive(
    ingest: IngestService, submission: Submission, response: Response, within: WithinTransaction
) -> Receipt:
    """Hand an upload's readings to the ingest service: stored in one transaction with what ``within`` keeps of
    the documents, the receipt carrying the stored reading of each item. Nightscout's answer has no room for the
    receipt: the ``X-Telemon-*`` headers carry it (accepted, duplicates, rejected, and the first reasons)."""
    [receipt] = await ingest.receive_all([submission], with_readings=True, within=within)
    response.headers.update(
        {
            "X-Telemon-Accepted": str(receipt.accepted),
            "X-Telemon-Duplicates": str(receipt.duplicates),
            "X-Telemon-Rejected": str(len(receipt.rejected)),
        }
    )
    if receipt.rejected:
        response.headers["X-Telemon-Reasons"] = reasons_header(receipt.rejected)
    return receipt


def reasons_header(rejected: list[dict[str, Any]]) -> str:
    """The first refusals, ``index: reason``, for whoever looks."""
    return header_text(
        "; ".join(f"{r['index'] if r['index'] is not None else '-'}: {r['reason']}" for r in rejected[:5])
    )
