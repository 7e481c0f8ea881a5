"""The board: columns of cards, moves, and the project's live event stream."""

from __future__ import annotations

from dataclasses import dataclass

from quart import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from app.blueprints.forms import read_form
from app.blueprints.guards import (
    current_auth_session,
    logged_in_user,
    login_required,
    wants_json,
)
from app.blueprints.page_cache import cached_part, project_part_key, render_part
from app.db import get_session
from app.errors import Invalid
from app.live.stream import StreamSettings, event_stream, last_event_id_from, present_as
from app.models import WorkflowStatus
from app.services import boards, issues, milestones, projects
from app.services.access import may_write, writable_project
from app.services.boards import BoardCard, BoardColumn, BoardFilters, CardCursor
from app.services.inputs import Id, IssueMove
from app.services.issues import StaleEdit

bp = Blueprint("boards", __name__)


class CardMove(IssueMove):
    """A move made on the board: the card, and the version its mover saw (the API names the
    issue in its URL and the version in If-Match)."""

    issue_id: Id
    version: Id


@dataclass
class Lane:
    """A swimlane: one assignee's cards (or nobody's), by column."""

    handle: str
    name: str
    columns: list[tuple[WorkflowStatus, list[BoardCard]]]

    @property
    def count(self) -> int:
        return sum(len(cards) for _, cards in self.columns)


def lanes_by_assignee(columns: list[BoardColumn]) -> list[Lane]:
    """Split the board into one lane per assignee (by name), then the unassigned cards."""
    people = {
        card.assignee[0]: card.assignee[1]
        for column in columns
        for card in column.cards
        if card.assignee is not None
    }
    order = sorted(people, key=lambda handle: (people[handle].lower(), handle))
    lanes = [Lane(handle, people[handle], []) for handle in order] + [Lane("", "Unassigned", [])]
    by_handle = {lane.handle: lane for lane in lanes}
    for column in columns:
        for lane in lanes:
            lane.columns.append((column.status, []))
        for card in column.cards:  # already in board order
            lane = by_handle[card.assignee[0] if card.assignee else ""]
            lane.columns[-1][1].append(card)
    return lanes


def _is_fragment() -> bool:
    """Asked for by the board's own script (or htmx): the cards alone, not a page."""
    return request.headers.get("HX-Request") == "true"


@bp.get("/p/<project_key:key>/board")
@login_required
async def board(key: str) -> str:
    session = get_session()
    viewer = logged_in_user()
    project = await projects.project_by_key(session, viewer, key)
    writable = await may_write(session, viewer, project)
    with_lanes = request.args.get("lanes") == "assignee"
    filters = BoardFilters.from_args(request.args)

    async def render_main_part() -> str:
        read = await boards.board(session, viewer, project.id, filters=filters)
        cards = current_app.extensions["cards"]
        return await render_part(
            "boards/_board.html",
            project=project,
            columns=read.columns,
            counts_seq=read.seq,
            filters=filters,
            card_html=cards.for_board(project.key, read.columns),
            lanes=lanes_by_assignee(read.columns) if with_lanes else None,
            can_write=writable,
            milestones=await milestones.choices(session, project.id),
        )

    part_key = project_part_key("board", project, viewer, writable, with_lanes, filters)
    main_part = await cached_part(part_key, render_main_part)
    return await render_template("boards/board.html", project=project, body=main_part)


@bp.get("/p/<project_key:key>/board/columns/<int(max=2147483647):status_id>")
@login_required
async def column(key: str, status_id: int) -> Response:
    """A column's next cards after `after` (a card's "position:id"), under the board's filters:
    the cards alone for the board's script, else a page of them with a link to the next."""
    session = get_session()
    viewer = logged_in_user()
    project = await projects.project_by_key(session, viewer, key)
    writable = await may_write(session, viewer, project)
    filters = BoardFilters.from_args(request.args)
    raw_after = request.args.get("after", "")
    after = CardCursor.parse(raw_after) if raw_after else None
    fragment = _is_fragment()

    async def render_main_part() -> str:
        page = await boards.column_page(
            session, viewer, project.id, status_id, after=after, filters=filters
        )
        cards = current_app.extensions["cards"]
        return await render_part(
            "boards/_column_page.html",
            project=project,
            column=page,
            filters=filters,
            card_html=cards.for_board(project.key, [page]),
            fragment=fragment,
        )

    # Kept by the same rules as the board's part (decision 0012): the project's state and the
    # viewer are in the key, so a page of cards is never older than the project.
    part_key = project_part_key(
        "board-column", project, viewer, writable, status_id, after, filters, fragment
    )
    main_part = await cached_part(part_key, render_main_part)
    if fragment:
        response = await make_response(main_part)
    else:
        response = await make_response(
            await render_template("boards/column.html", project=project, body=main_part)
        )
    response.vary.add("HX-Request")  # one URL, two answers
    return response


@bp.get("/p/<project_key:key>/board/counts")
@login_required
async def counts(key: str) -> Response:
    """Each column's whole count under the filters, and the event counter they were read at:
    what the board asks when a live event moves a card it has not loaded."""
    session = get_session()
    viewer = logged_in_user()
    project = await projects.project_by_key(session, viewer, key)
    filters = BoardFilters.from_args(request.args)
    by_status, seq = await boards.column_counts(session, viewer, project.id, filters)
    return jsonify(seq=seq, counts={str(status_id): n for status_id, n in by_status.items()})


@bp.post("/p/<project_key:key>/board/moves")
@login_required
async def move(key: str) -> Response | tuple[Response, int]:
    """Save a move (drag and drop, or a card's menu) made on the version the mover saw."""
    session = get_session()
    project = await projects.project_by_key(session, logged_in_user(), key)
    project_key = project.key
    project_id, form = project.id, await request.form
    try:
        card = await read_form(
            CardMove,
            form,
            authorise=lambda: writable_project(session, logged_in_user(), project_id),
        )
        moved = await issues.move_issue(
            session,
            logged_in_user(),
            card.issue_id,
            status_id=card.status_id,
            before_id=card.before_id,
            expected_version=card.version,
            in_project=project_id,
        )
    except (StaleEdit, Invalid) as refusal:
        if wants_json():
            return jsonify(error={"code": refusal.code, "message": refusal.message}), refusal.status
        raise
    if wants_json():
        return jsonify(
            issue_id=moved.id,
            version=moved.version,
            status_id=moved.status_id,
            position=moved.position,
        )
    return redirect(url_for("boards.board", key=project_key, _anchor=f"card-{moved.id}"))


@bp.get("/p/<project_key:key>/events")
@login_required
async def events(key: str) -> Response:
    """The project's server-sent events: replay after Last-Event-ID, then live. The app serves
    a GET of this path on its lean path (blueprints/event_stream.py), which hands here only the
    requests it does not serve itself: what this route answers is the reference for both."""
    session = get_session()
    viewer, auth_session = logged_in_user(), current_auth_session()
    assert auth_session is not None
    project = await projects.project_by_key(session, viewer, key)
    project_id, auth_session_id = project.id, auth_session.id
    # Without a last id a client starts from now; with one it first gets what it missed.
    last_event_id = last_event_id_from(
        request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    )
    # Presence: which page the stream belongs to ("board" or an issue key), shown to others.
    present = present_as(viewer, request.args.get("view", ""))
    # A stream holds no pooled connection while it waits: this request's session ends here.
    await session.close()
    app = current_app._get_current_object()
    stream = event_stream(
        app.extensions["broker"],
        project_id,
        last_event_id,
        StreamSettings.from_config(app.config),
        present,
        # The broker checks these every SSE_RECHECK_SECONDS, for all its streams at once.
        auth_session_id=auth_session_id,
        user_id=viewer.id,
    )
    response = await make_response(
        stream,
        {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        },
    )
    response.timeout = None  # else Quart cuts the stream after RESPONSE_TIMEOUT
    return response
