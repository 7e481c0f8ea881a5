"""The API's refusals, all in one JSON shape: {"error": {"code", "message", "field"}}.

Service refusals and HTTP errors already answer this shape under /api/ (app.blueprints.errors);
these handlers add what only the API meets: schema validation and undecodable bodies.
"""

from __future__ import annotations

from pydantic import ValidationError
from quart import Blueprint, Response, jsonify
from quart_schema import RequestSchemaValidationError

from app.services.inputs import problems


def error_answer(status: int, code: str, message: str, field: str | None = None) -> Response:
    response = jsonify(error={"code": code, "message": message, "field": field})
    response.status_code = status
    return response


def _first_problem(error: RequestSchemaValidationError) -> tuple[str, str | None]:
    """A readable message and the field at fault from pydantic's list of problems."""
    validation = error.validation_error
    # Anything else (a body that is not an object, say) gets the generic message.
    found = problems(validation) if isinstance(validation, ValidationError) else []
    if not found:
        return "The request does not match the API's schema.", None
    field, message = found[0]
    return (f"{field}: {message}" if field else message), field


def register(bp: Blueprint) -> None:
    @bp.errorhandler(RequestSchemaValidationError)
    async def schema_refused(error: RequestSchemaValidationError) -> Response:
        message, field = _first_problem(error)
        return error_answer(400, "invalid", message, field)

    @bp.errorhandler(UnicodeDecodeError)
    async def undecodable(error: UnicodeDecodeError) -> Response:
        return error_answer(400, "invalid_encoding", "The request body is not valid UTF-8.")
