"""OpenAPI description of Medic's API-key authentication."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from medic.apikeys import MAX_RATE_LIMIT, RATE_LIMIT_CLASSES
from medic.limits import MAX_MUTE
from medic.timezones import accepted_names


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
    "414": "The URL is too long (answered by the HTTP server, before Medic).",
    "415": "Unsupported media type.",
    "422": "A field or query parameter is invalid; `fields` says what to fix.",
    "429": "Over a rate limit; see Retry-After.",
}
# Answered by the HTTP server in front of the application, in its own format.
SERVER_ANSWERED = {"414"}
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
                    # Messages; a playbook's problems also say where (medic/errors.py callers in
                    # remediation/playbooks).
                    "additionalProperties": {
                        "type": "array",
                        "items": {
                            "oneOf": [
                                {"type": "string"},
                                {
                                    "type": "object",
                                    "required": ["message"],
                                    "properties": {
                                        "message": {"type": "string"},
                                        "line": {"type": "integer", "nullable": True},
                                        "column": {"type": "integer", "nullable": True},
                                    },
                                },
                            ]
                        },
                    },
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
# Whitespace as Python's str.strip() and str.isspace() read it (DRF trims with strip()); the
# schema's regular expressions are ECMA's, whose \s is a different set.
_WS = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_NAME = rf"^(?![{_WS}]*\d+[{_WS}]*$)(?=.*[^{_WS}])[^/\x00]+$"
_NAME_RULE = {"pattern": _NAME, "description": "Not only digits, no '/'."}
_OBJECT = {"type": "object", "additionalProperties": True}
_RUN_ID = rf"^[{_WS}]*[^{_WS}\x00]{{0,64}}[{_WS}]*$"
_TIMEZONE = {"enum": list(accepted_names()), "description": "An IANA name (Area/Location) or UTC."}
# Any JSON value but null (OpenAPI 3.0 has no null type to exclude).
_NOT_NULL = {
    "anyOf": [{"type": t} for t in ("object", "array", "string", "number", "boolean")],
    "nullable": False,
}
_RATE_LIMITS = {
    "type": "object",
    "properties": {
        kind: {"type": "integer", "minimum": 0, "maximum": MAX_RATE_LIMIT}
        for kind in RATE_LIMIT_CLASSES
    },
    "additionalProperties": False,
}
SERVER_RULES = {
    "Service": {
        "heartbeat_name": _NAME_RULE,
        "slow_run_factor": {"exclusiveMinimum": True},
        "schedule_timezone": _TIMEZONE,
    },
    "ServiceUpdate": {
        "slow_run_factor": {"exclusiveMinimum": True},
        "schedule_timezone": _TIMEZONE,
    },
    "Team": {"name": _NAME_RULE},
    "Target": {"name": _NAME_RULE, "body_template": _NOT_NULL},
    "Rule": {"name": _NAME_RULE, "targets": {"minItems": 1}},
    "WorkingHours": {
        "name": _NAME_RULE,
        "spec": {
            **_OBJECT,
            "required": ["timezone", "windows"],
            "properties": {"timezone": _TIMEZONE, "windows": {"type": "array", "minItems": 1}},
        },
    },
    "Window": {
        "ends_at": {"description": "Must be after starts_at (checked by the server: 422)."},
        "timezone": _TIMEZONE,
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
    # A job run's id: trimmed, then 1 to 64 characters without spaces (heartbeats/jobs.py).
    "StartIn": {"run_id": {"pattern": _RUN_ID}},
    "EndIn": {"run_id": {"pattern": _RUN_ID}},
    "MuteIn": {
        "duration": {
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": int(MAX_MUTE.total_seconds())},
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
        _strings(component)


# DRF's CharField trims whitespace and refuses NUL, and a required one refuses what is blank after
# trimming: said of every string a request body carries (unless a format or a stricter pattern
# already says more).
_NO_NUL = r"^[^\x00]*$"
_NOT_BLANK = rf"^[^\x00]*[^{_WS}\x00][^\x00]*$"


def _strings(schema: dict) -> None:
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not ({"enum", "format", "pattern"} & set(schema)):
        schema["pattern"] = _NOT_BLANK if schema.get("minLength", 0) >= 1 else _NO_NUL
    for value in schema.get("properties", {}).values():
        _strings(value)
    for key in ("items", "additionalProperties"):
        _strings(schema.get(key))
    for key in ("oneOf", "anyOf", "allOf"):
        for value in schema.get(key, []):
            _strings(value)


# Parameters (query or path) the views refuse that a bare "string" would allow: operation id ->
# name -> schema keywords. A blank filter is refused (400), not read as "no filter".
_FILTER = {"type": "string", "minLength": 1, "pattern": _NOT_BLANK}
_AUDIT_FILTERS = {
    **{name: _FILTER for name in ("actor", "event", "playbook", "service")},
    "execution": {"type": "integer", "minimum": 1},
}
PARAMETER_RULES = {
    "audit_list": _AUDIT_FILTERS,
    "audit_export": _AUDIT_FILTERS,
    # remediation/secrets/services.py NAME_RE
    **{
        op: {"name": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"}}
        for op in ("secrets_get", "secrets_put", "secrets_delete")
    },
    "reports_success_metrics": {"team": _FILTER},
    "reports_outcomes": {"team": _FILTER},
    "playbooks_preview": {"service": _FILTER},
    "alerts_list": {"priority": {"type": "string", "pattern": r"^[pP][1-5]$"}},
}


# Operations that cannot answer without a body (415 otherwise): their request body is required.
BODY_REQUIRED = {"playbooks_create", "playbooks_update", "playbooks_validate"}


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
            if operation.get("operationId") in BODY_REQUIRED and "requestBody" in operation:
                operation["requestBody"]["required"] = True
            rules = PARAMETER_RULES.get(operation.get("operationId"), {})
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter.get("name") in PAGE_PARAMETERS:
                    parameter["schema"] = dict(PAGE_PARAMETERS[parameter["name"]])
                if parameter.get("in") in ("query", "path") and parameter.get("name") in rules:
                    parameter["schema"] = dict(rules[parameter["name"]])
            for status, description in ERROR_RESPONSES.items():
                content = {} if status in SERVER_ANSWERED else {"content": error_ref}
                responses.setdefault(status, {"description": description, **content})
    return result
