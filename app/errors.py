"""What a service raises when it refuses; the blueprints turn each into a clear answer."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of the refusals a service makes. `status` is the HTTP answer it maps to."""

    status = 400
    code = "invalid"
    # Seconds the client should wait before asking again, sent as Retry-After.
    retry_after: int | None = None

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    @property
    def field_errors(self) -> dict[str, str]:
        """Each field's problem, for a form: several when given as errors=, else the one."""
        errors = self.details.get("errors")
        if errors:
            return dict(errors)
        return {self.field: self.message} if self.field else {}


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


class TooManyRequests(ServiceError):
    """Slow down: too many requests or failed attempts; `retry_after` says for how long."""

    status = 429
    code = "too_many_requests"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message or f"Too many attempts. Try again in {retry_after} seconds.")
        self.retry_after = retry_after


class TooLarge(ServiceError):
    """What was sent is larger than the limit the message names."""

    status = 413
    code = "too_large"
