"""The OpenAPI document (quart-schema, API routes only) and its browsable page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from quart import Quart, current_app, render_template
from quart_schema import QuartSchema
from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import DataSource
from werkzeug.routing import BaseConverter, IntegerConverter, Rule

from app.api.schemas import ErrorOut

API_PREFIX = "/api/v1"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"

# Every operation may answer these with the error shape: documented once, here.
ERROR_STATUSES = {
    400: "The request is malformed or a value is invalid.",
    401: "A token is needed, or the one sent is unknown, expired or revoked.",
    403: "The caller may see this but not do it (role, read-only token, unconfirmed account).",
    404: "No such thing, or one the caller may not see.",
    405: "The method is not allowed on this URL (see Allow).",
    409: "The change collides with the current state.",
    413: "The request body is too large.",
    415: "The request body is not JSON.",
    429: "Too many requests: see Retry-After.",
}


class ApiOpenAPIProvider(OpenAPIProvider):
    """Only /api/v1 routes (the pages and the endless event stream are not API), bodies marked
    required, path parameters with their converter's pattern, and the error answers."""

    def generate_rules(self) -> Iterable[Rule]:
        for rule in super().generate_rules():
            if rule.rule.startswith(API_PREFIX + "/") and rule.rule != OPENAPI_PATH:
                yield rule

    def build_request_body(
        self, model: Any, source: DataSource
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        body, components = super().build_request_body(model, source)
        body["required"] = True  # quart-schema leaves it out; an empty POST is refused
        return body, components

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        schema = parameter["schema"]
        if isinstance(converter, IntegerConverter):
            # What the converter matches; other numbers name no route at all.
            schema["minimum"] = converter.min if converter.min is not None else 0
            if converter.max is not None:
                schema["maximum"] = converter.max
        elif type(converter).__module__.startswith("app.") and schema == {"type": "string"}:
            schema["pattern"] = f"^{converter.regex}$"
            if name == "key":
                schema["examples"] = ["WEB-1" if "-" in converter.regex else "WEB"]
        return parameter

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        paths, components = super().build_paths(rule)
        error_response, error_components = self.build_response_object(ErrorOut, None)
        components.update(error_components)
        for operations in paths.values():
            for operation in operations.values():
                # Each method got a shallow copy: give each its own responses.
                responses = dict(operation["responses"])
                if not any(str(status).startswith("2") for status in responses):
                    responses[204] = {"description": "Done; no content."}
                for status, description in ERROR_STATUSES.items():
                    responses.setdefault(status, {**error_response, "description": description})
                operation["responses"] = responses
        return paths, components


def init_app(app: Quart) -> None:
    QuartSchema(
        app,
        openapi_path=OPENAPI_PATH,
        # Our own page below instead: the stock ones load scripts from CDNs, which the
        # Content-Security-Policy (script-src 'self') rightly blocks.
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
        info={
            "title": "Issues API",
            "version": "1.0.0",
            "description": (
                "Projects, issues, comments and activity. Authenticate with a personal access "
                "token from the account page: `Authorization: Bearer iss_...`. Anonymous callers "
                "may read public projects."
            ),
        },
        security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer"}},
        # A token, or nothing (anonymous reads of public projects).
        security=[{"bearerAuth": []}, {}],
        openapi_provider_class=ApiOpenAPIProvider,
    )


async def docs_page() -> str:
    """The API's reference, rendered on the server from the OpenAPI document (no scripts)."""
    spec = current_app.extensions["QUART_SCHEMA"].openapi_provider.schema()
    operations = [
        (path, method.upper(), operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]
    return await render_template(
        "api/docs.html", spec=spec, operations=operations, openapi_path=OPENAPI_PATH
    )
