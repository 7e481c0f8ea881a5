"""Error answers: an HTML page for browsers, JSON for API clients; a refusal is never a 500."""

from __future__ import annotations

from quart import Quart, Response, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from app.errors import ServiceError


def _wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


async def _error_answer(
    status: int, code: str, message: str, field: str | None = None
) -> tuple[Response | str, int]:
    if _wants_json():
        return jsonify(error={"code": code, "message": message, "field": field}), status
    return await render_template("errors/error.html", status=status, message=message), status


def init_app(app: Quart) -> None:
    @app.errorhandler(ServiceError)
    async def service_refused(error: ServiceError) -> Response:
        body, status = await _error_answer(error.status, error.code, error.message, error.field)
        response = await make_response(body, status)
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> tuple[Response | str, int]:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        return await _error_answer(status, code, error.description or error.name)
