"""Reading submitted forms with the input models the API reads its bodies with
(app.services.inputs): the same rules, and each refusal beside the form's own field, in the words
the API uses."""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from werkzeug.datastructures import MultiDict

from app.errors import Invalid
from app.models import LARGEST_ID
from app.services.inputs import problems

Input = TypeVar("Input", bound=BaseModel)

# Where the pages' forms name a field otherwise than the input models (and the API) do.
FORM_NAMES = {
    "status_id": "status",
    "assignee_id": "assignee",
    "label_ids": "labels",
    "due_date": "due",
    "issue_ids": "issue",
    "issue_id": "issue",
    "before_id": "before",
    "milestone_id": "milestone",
}


def form_name(field: str) -> str:
    """What the pages' forms call the input models' `field`."""
    return FORM_NAMES.get(field, field)


def model_field(model: type[BaseModel], name: str) -> str | None:
    """The field of `model` that the forms call `name`, None when it has none."""
    return next((field for field in model.model_fields if form_name(field) == name), None)


def _kinds(annotation: Any) -> set[Any]:
    """The plain types an annotation allows, its Annotated and unions unwrapped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return set().union(*(_kinds(arg) for arg in get_args(annotation)))
    return {origin or annotation}


def _form_values(model: type[BaseModel], form: MultiDict, fields: Iterable[str]) -> dict[str, Any]:
    """The form's values for `fields` of `model`. A form sends every value as text, and an
    empty one (or none, for a box left unticked) for "nothing": "" for text, no items for a
    list, null where the field may be null, and otherwise the field's default."""
    values: dict[str, Any] = {}
    for field in fields:
        kinds = _kinds(model.model_fields[field].annotation)
        name = form_name(field)
        if list in kinds:
            values[field] = [raw.strip() for raw in form.getlist(name) if raw.strip()]
            continue
        raw = str(form.get(name, ""))
        if str in kinds:
            values[field] = raw  # text as typed: the services trim it
        elif raw.strip():
            values[field] = raw.strip()
        elif type(None) in kinds:
            values[field] = None
    return values


def _refusal(error: ValidationError) -> Invalid:
    """Invalid with each problem under the form's name for its field (`form` for the whole)."""
    errors: dict[str, str] = {}
    for field, message in problems(error):
        name = form_name(field.split(".")[0]) if field else "form"
        errors.setdefault(name, message)
    name, message = next(iter(errors.items()))
    return Invalid(message, field=None if name == "form" else name, errors=errors)


async def read_form(
    model: type[Input],
    form: MultiDict,
    *,
    authorise: Callable[[], Awaitable[object]] | None = None,
    fields: Iterable[str] | None = None,
    **given: Any,
) -> Input:
    """The submitted `form` as `model`, checked as the API checks a body (but read laxly: a
    form's numbers are text). `fields` are those the form carries (all of the model's when
    None); `given` are values the page worked out itself (a radio button meaning true, say),
    checked all the same.

    Raises Invalid with every field's message (field_errors, under the form's names). Before
    that, `authorise` (the use case's own check of who asks) runs, so that only someone who may
    make the change hears what is wrong with it: anyone else gets its Forbidden or NotFound."""
    wanted = [field for field in fields or model.model_fields if field not in given]
    values = {**_form_values(model, form, wanted), **given}
    try:
        return model.model_validate(values, strict=False)
    except ValidationError as error:
        if authorise is not None:
            await authorise()
        raise _refusal(error) from None


def form_text(form: MultiDict, name: str) -> str:
    return str(form.get(name, ""))


def form_int(form: MultiDict, name: str) -> int | None:
    """A number the input models do not cover, None when empty; Invalid(field=name) when it is
    not a number or names nothing (more than LARGEST_ID)."""
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be a number.", field=name) from None
    if not 0 <= value <= LARGEST_ID:
        raise Invalid(f"{name} is out of range.", field=name)
    return value
