"""An issue's relations: listed (with its parent and sub-issues), added, removed. Sub-issues are
made and moved through the issues' `parent` field."""

from __future__ import annotations

from quart import Blueprint, Response
from quart_schema import document_response, validate_querystring, validate_request

from app.api.auth import acting_user, caller
from app.api.schemas import (
    RelationArgs,
    RelationList,
    RelationOut,
    related_out,
    relation_list,
)
from app.db import get_session
from app.errors import NotFound
from app.services import issue_views, relation_views, relations
from app.services.inputs import RelationIn

bp = Blueprint("relations", __name__)


@bp.get("/issues/<issue_key:key>/relations")
@document_response(RelationList, 200)
async def list_relations(key: str) -> RelationList:
    """The issue's relations to issues the caller can read, its parent and its sub-issues."""
    issue = await issue_views.get_issue_by_key(get_session(), caller(), key)
    return relation_list(await relation_views.relations_of_issue(get_session(), caller(), issue))


@bp.post("/issues/<issue_key:key>/relations")
@validate_request(RelationIn)
@document_response(RelationOut, 201)
async def add_relation(key: str, data: RelationIn) -> tuple[RelationOut, int]:
    """Relate the issue to another (members of this issue's project; the other issue may be in
    any project the caller can read). The same relation twice, either way round, is a 400."""
    session = get_session()
    issue = await issue_views.get_issue_by_key(session, caller(), key)
    issue_id = issue.id
    created = await relations.add_relation(
        session, acting_user(), issue_id, data.type, data.issue, close_duplicate=data.close
    )
    shown = await relation_views.issue_relations(session, caller(), issue_id, None)
    relation = next(r for r in shown.relations if r.id == created.id)
    return RelationOut(id=relation.id, type=relation.type, issue=related_out(relation.issue)), 201


@bp.delete("/issues/<issue_key:key>/relations")
@validate_querystring(RelationArgs)
async def remove_relation(key: str, query_args: RelationArgs) -> Response:
    """Remove the relation `type` to the issue `issue` (members): 204, or 404 when the issue
    has no such relation that the caller can see."""
    session = get_session()
    issue = await issue_views.get_issue_by_key(session, caller(), key)
    issue_id, wanted = issue.id, query_args.issue.strip().upper()
    shown = await relation_views.relations_of_issue(session, caller(), issue)
    found = next(
        (r for r in shown.relations if r.type == query_args.type and r.issue.key == wanted), None
    )
    if found is None:
        raise NotFound(f"{key.upper()} has no such relation.")
    await relations.remove_relation(session, acting_user(), issue_id, found.id)
    return Response(status=204)
