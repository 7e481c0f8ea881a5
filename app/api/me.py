"""The caller: who the token or session belongs to."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from app.api.auth import acting_user, current_token
from app.api.schemas import MeOut, me_out

bp = Blueprint("me", __name__)


@bp.get("/me")
@document_response(MeOut, 200)
async def show_me() -> MeOut:
    """The caller's account, and how they authenticated."""
    return me_out(acting_user(), current_token())
