"""What a service raises when it refuses; the blueprints turn each into a clear answer."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of the refusals a service makes. `status` is the HTTP answer it maps to."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class Invalid(ServiceError):
    """The input is wrong; `field` names the one at fault when there is one."""

    status = 400
    code = "invalid"


class NotFound(ServiceError):
    """No such thing, or one the actor may not see (private things never answer 403)."""

    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The actor can see it but may not do this."""

    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The change collides with the current state (a stale version, a taken key)."""

    status = 409
    code = "conflict"
