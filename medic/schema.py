"""OpenAPI description of Medic's API-key authentication."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from medic.apikeys import MAX_RATE_LIMIT, RATE_LIMIT_CLASSES


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "medic.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "mdk_...",
            "description": "An API key; also accepted as the X-API-Key header.",
        }


# Every error the API can answer, in the one envelope (medic/errors.py). Documented on every
# operation so that clients (and the fuzzer in the test command) can rely on the shape.
ERROR_RESPONSES = {
    "400": "The request body is not valid JSON.",
    "401": "No API key, or one that does not work.",
    "403": "The key lacks the scope for this operation.",
    "404": "No such object.",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "Conflicts with the current state.",
    "413": "The body is larger than the upload limit.",
    "415": "Unsupported media type.",
    "422": "A field or query parameter is invalid; `fields` says what to fix.",
    "429": "Over a rate limit; see Retry-After.",
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}


# The paginators refuse what is outside these (medic/pagination.py).
PAGE_PARAMETERS = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 500},
    "page": {"type": "integer", "minimum": 1},
}


# Rules the services enforce that the serializers cannot express, stated in the schema so that
# a client (or the fuzzer) sees them: component (without "Patched"/"Request") -> property ->
# schema keywords. A name that is only digits would be read as an id (medic/ids.py); "/" would
# break the URL it appears in.
_NAME = r"^(?!\s*\d+\s*$)(?=.*\S)[^/]+$"
_NAME_RULE = {"pattern": _NAME, "description": "Not only digits, no '/'."}
_OBJECT = {"type": "object", "additionalProperties": True}
_RATE_LIMITS = {
    "type": "object",
    "properties": {
        kind: {"type": "integer", "minimum": 0, "maximum": MAX_RATE_LIMIT}
        for kind in RATE_LIMIT_CLASSES
    },
    "additionalProperties": False,
}
SERVER_RULES = {
    "Service": {"heartbeat_name": _NAME_RULE},
    "Team": {"name": _NAME_RULE},
    "Target": {"name": _NAME_RULE, "body_template": {"nullable": False}},
    "Rule": {"name": _NAME_RULE, "targets": {"minItems": 1}},
    "WorkingHours": {"name": _NAME_RULE, "spec": _OBJECT},
    "Window": {
        "ends_at": {"description": "Must be after starts_at (checked by the server)."},
    },
    "Agent": {"name": {"pattern": r"^(?!\d+$)[A-Za-z0-9_.-]{1,100}$"}},
    "ApiKey": {
        "scopes": {"minItems": 1},
        "rate_limits": _RATE_LIMITS,
    },
    "ApiKeyUpdate": {
        "rate_limits": _RATE_LIMITS,
    },
    "ScriptCreateIn": {"args_schema": _OBJECT},
    "ScriptUpdateIn": {"args_schema": _OBJECT},
    "MuteIn": {
        "duration": {
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": r"^\s*(\d+[smhdw])+\s*$"},
            ]
        }
    },
}


# Read-only fields a response may leave out (drf-spectacular marks every read-only field as
# required): a created PagerDuty or Slack target has no signing secret.
OPTIONAL_IN_RESPONSES = {"TargetCreated": ("signing_secret",)}


def _apply_server_rules(schemas: dict) -> None:
    for name, optional in OPTIONAL_IN_RESPONSES.items():
        if name in schemas:
            required = [f for f in schemas[name].get("required", []) if f not in optional]
            schemas[name]["required"] = required
    for name, component in schemas.items():
        base = name.removeprefix("Patched").removesuffix("Request").removesuffix("In")
        rules = SERVER_RULES.get(base) or SERVER_RULES.get(base + "In") or {}
        if not name.endswith("Request"):
            continue
        for prop, keywords in rules.items():
            if prop in component.get("properties", {}):
                component["properties"][prop].update(keywords)


def _paginated(items: dict) -> dict:
    # Both paginators (medic/pagination.py) answer this shape; only the numbered one has count.
    link = {"type": "string", "format": "uri", "nullable": True}
    return {
        "type": "object",
        "required": ["next", "previous", "results"],
        "properties": {
            "count": {"type": "integer"},
            "next": link,
            "previous": link,
            "results": items,
        },
    }


def postprocess(result, generator, request, public):
    """Make the schema say what the API answers: list operations are paginated objects, and every
    operation documents the error envelope for the statuses it can answer."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    _apply_server_rules(result["components"]["schemas"])
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            ok = responses.get("200", {}).get("content", {}).get("application/json", {})
            if method == "get" and ok.get("schema", {}).get("type") == "array":
                ok["schema"] = _paginated(ok["schema"])
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter.get("name") in PAGE_PARAMETERS:
                    parameter["schema"] = dict(PAGE_PARAMETERS[parameter["name"]])
            for status, description in ERROR_RESPONSES.items():
                responses.setdefault(status, {"description": description, "content": error_ref})
    return result
