"""The playbook document: its JSON Schema, YAML parsing with line numbers, semantic checks, and
the normalised spec the engine runs.

Two layers, as operators meet them: the JSON Schema (published at GET /v2/playbooks/schema, so
editors and the portal validate the shape) and the checks a schema cannot express: unknown
scripts or agent labels, undefined variables, goto targets and loops, durations. Every problem
carries the YAML ``path`` (``steps[1].url``) and ``line`` it points at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jsonschema
import yaml

from medic.durations import parse_duration
from medic.errors import InvalidInput

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
DURATION_PATTERN = r"^\s*[0-9]+\s*([smhdw]\s*)?([0-9]+\s*[smhdw]\s*)*$"
STEP_TYPES = ("webhook", "script", "wait", "condition", "escalate")
CHECKS = ("heartbeat_received", "service_status", "step")
STEP_FIELDS = ("status", "status_code", "body", "exit_code", "output")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Values an execution knows from the start (docs/playbooks.md "Variables").
BUILTIN_VARIABLES = (
    "SERVICE_NAME",
    "HEARTBEAT_NAME",
    "TEAM",
    "PRIORITY",
    "ALERT_ID",
    "EXECUTION_ID",
    "PLAYBOOK",
)
# Fields of the triggering event's payload (medic.events contract) and of the trigger itself.
TRIGGER_FIELDS = (
    "kind",
    "event_id",
    "reason",
    "consecutive_failures",
    "exit_code",
    "output_tail",
    "run_id",
    "started_at",
    "duration_ms",
    "deadline_at",
    "last_heartbeat_at",
    "alert_id",
    "priority",
    "team",
)
VARIABLE_RE = re.compile(r"\$\{([^}]*)\}")
MAX_STEPS = 50
MAX_RETRIES = 10

_DURATION = {"type": ["string", "integer"], "pattern": DURATION_PATTERN, "minimum": 1}
_ON_FAILURE = {
    "oneOf": [
        {"type": "string", "enum": ["fail", "continue", "escalate"]},
        {"type": "string", "pattern": r"^goto:\s*\S+$"},
        {
            "type": "object",
            "properties": {"goto": {"type": "string", "minLength": 1}},
            "required": ["goto"],
            "additionalProperties": False,
        },
    ],
    "description": "fail (default), continue, escalate, or goto: <step name> (a later step).",
}
_COMMON = {
    "name": {"type": "string", "pattern": NAME_PATTERN},
    "type": {"enum": list(STEP_TYPES)},
    "timeout": {**_DURATION, "description": "How long the step may take (default per type)."},
    "retries": {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES},
    "on_failure": _ON_FAILURE,
}


def _step(kind: str, properties: dict, required: list[str]) -> dict:
    return {
        "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
        "then": {
            "properties": {**_COMMON, **properties},
            "required": ["name", "type", *required],
            "additionalProperties": False,
        },
    }


_TARGET = {
    "type": "object",
    "properties": {
        "local": {"const": True},
        "agent": {"type": "string", "minLength": 1},
        "labels": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://medic.invalid/schemas/playbook.json",
    "title": "Medic playbook",
    "type": "object",
    "required": ["name", "trigger", "steps"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "description": {"type": "string", "maxLength": 1000},
        "mode": {"enum": ["active", "shadow"], "default": "active"},
        "approval": {
            "type": "string",
            "pattern": r"^(none|required|timeout:\s*[0-9]+[smhdw])$",
            "default": "none",
        },
        "four_eyes": {"type": "boolean", "default": False},
        "approvers": {"type": "integer", "minimum": 1, "maximum": 2, "default": 1},
        "max_concurrent": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 10},
        "verify_window": {**_DURATION, "default": "10m"},
        "trigger": {
            "type": "object",
            "required": ["service_pattern"],
            "additionalProperties": False,
            "properties": {
                "service_pattern": {"type": "string", "minLength": 1, "maxLength": 255},
                "consecutive_failures": {"type": "integer", "minimum": 1, "default": 1},
                "exit_codes": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": -255, "maximum": 255},
                    "minItems": 1,
                },
                "output_regex": {"type": "string", "minLength": 1, "maxLength": 1000},
            },
        },
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_STEPS,
            "items": {
                "type": "object",
                "required": ["name", "type"],
                "properties": {"type": {"enum": list(STEP_TYPES)}},
                "allOf": [
                    _step(
                        "webhook",
                        {
                            "url": {"type": "string", "pattern": r"^(https?://|\$\{)"},
                            "method": {"enum": list(HTTP_METHODS), "default": "POST"},
                            "headers": {
                                "type": "object",
                                "additionalProperties": {"type": ["string", "number"]},
                            },
                            "body": {},
                            "backoff": {**_DURATION, "default": "5s"},
                            "success": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "status": {
                                        "type": "array",
                                        "items": {
                                            "type": "integer",
                                            "minimum": 100,
                                            "maximum": 599,
                                        },
                                        "minItems": 1,
                                    },
                                    "json_path": {"type": "string", "minLength": 1},
                                    "equals": {},
                                    "regex": {"type": "string", "minLength": 1},
                                },
                            },
                        },
                        ["url"],
                    ),
                    _step(
                        "script",
                        {
                            "script": {"type": "string", "minLength": 1},
                            "args": {"type": "object"},
                            "target": _TARGET,
                            "success_exit_codes": {
                                "type": "array",
                                "items": {"type": "integer"},
                                "minItems": 1,
                            },
                        },
                        ["script"],
                    ),
                    _step("wait", {"duration": _DURATION}, ["duration"]),
                    _step(
                        "condition",
                        {
                            "check": {"enum": list(CHECKS)},
                            "status": {"enum": ["up"]},
                            "step": {"type": "string"},
                            "field": {"enum": list(STEP_FIELDS)},
                            "equals": {},
                            "matches": {"type": "string", "minLength": 1},
                            "in": {"type": "array", "minItems": 1},
                            "interval": _DURATION,
                        },
                        ["check"],
                    ),
                    _step("escalate", {"message": {"type": "string", "maxLength": 2000}}, []),
                ],
            },
        },
    },
}

_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
DEFAULT_TIMEOUTS = {"webhook": 10, "script": 300, "wait": 0, "condition": 60, "escalate": 30}
MAX_TIMEOUT_SECONDS = 6 * 3600


# --- Errors -----------------------------------------------------------------------------------


@dataclass
class Problem:
    path: str
    message: str
    line: int | None = None
    column: int | None = None


class PlaybookInvalid(InvalidInput):
    """422 whose field errors are objects carrying ``message``, ``line`` and ``column``."""

    code = "playbook_invalid"
    default_message = "The playbook is invalid."

    def __init__(self, problems: list[Problem]) -> None:
        fields: dict[str, list] = {}
        for p in problems:
            fields.setdefault(p.path or "$", []).append(
                {"message": p.message, "line": p.line, "column": p.column}
            )
        first = problems[0]
        where = f" (line {first.line})" if first.line else ""
        super().__init__(
            f"The playbook is invalid: {first.path or 'document'}: {first.message}{where}"
            + (f" and {len(problems) - 1} more problem(s)." if len(problems) > 1 else ""),
            fields=fields,
        )
        self.problems = problems


# --- YAML with marks --------------------------------------------------------------------------


def _path_join(parent: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def _marks(node: yaml.Node, path: str, out: dict[str, tuple[int, int]], problems: list[Problem]):
    out.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = _path_join(path, key)
            if key in seen:
                problems.append(
                    Problem(
                        child,
                        "Duplicate key (YAML would silently keep the last one).",
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                    )
                )
            seen.add(key)
            out[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _marks(value_node, child, out, problems)
            # The value's own position, for errors about the value rather than the key.
            out.setdefault(child + "#value", (value_node.start_mark.line + 1, 0))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _marks(item, _path_join(path, i), out, problems)


@dataclass
class Parsed:
    data: Any
    source: str
    lines: dict[str, tuple[int, int]]

    def at(self, path: str) -> tuple[int | None, int | None]:
        probe = path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", probe)
        return self.lines.get("", (None, None))

    def problem(self, path: str, message: str) -> Problem:
        line, column = self.at(path)
        return Problem(path, message, line, column)


def parse_yaml(source: str) -> Parsed:
    """Parse one YAML document (safe loader only) and remember where every path is."""
    if not isinstance(source, str) or not source.strip():
        raise PlaybookInvalid([Problem("", "The document is empty.")])
    try:
        node = yaml.compose(source, Loader=yaml.SafeLoader)
        data = yaml.safe_load(source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise PlaybookInvalid(
            [
                Problem(
                    "",
                    f"Not valid YAML: {exc.problem or exc.context}",
                    mark.line + 1 if mark else None,
                    mark.column + 1 if mark else None,
                )
            ]
        ) from exc
    except yaml.YAMLError as exc:
        raise PlaybookInvalid([Problem("", f"Not valid YAML: {exc}")]) from exc
    lines: dict[str, tuple[int, int]] = {}
    problems: list[Problem] = []
    if node is not None:
        _marks(node, "", lines, problems)
    if problems:
        raise PlaybookInvalid(problems)
    return Parsed(data=data, source=source, lines=lines)


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, as people write playbooks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def to_yaml(data: Any) -> str:
    """A document as YAML text, keys in their order (the portal's form builder writes with it)."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def from_data(data: Any) -> Parsed:
    """A document that arrived as JSON: no lines, and a YAML rendering kept as its source."""
    source = to_yaml(data) if data else ""
    return Parsed(data=data, source=source, lines={})


# --- Validation -------------------------------------------------------------------------------


@dataclass
class Context:
    """What the semantic checks need to know about the installation."""

    scripts: dict[str, dict]  # name -> {"run_local", "run_on_agents", "args_schema"}
    agents: set[str]
    labels: set[str]
    secrets: set[str]


def _schema_path(error: jsonschema.ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path = _path_join(path, part)
    return path


def _best(errors) -> list[jsonschema.ValidationError]:
    """One error per location, the most specific (oneOf/if-then noise collapsed)."""
    out: dict[str, jsonschema.ValidationError] = {}
    for error in errors:
        leaf = jsonschema.exceptions.best_match([error])
        path = _schema_path(leaf)
        out.setdefault(path, leaf)
    return list(out.values())


def seconds(value) -> int:
    return int(parse_duration(value).total_seconds())


def _on_failure(value) -> dict:
    if value is None or value == "fail":
        return {"action": "fail"}
    if isinstance(value, dict):
        return {"action": "goto", "step": value["goto"]}
    if value.startswith("goto:"):
        return {"action": "goto", "step": value.split(":", 1)[1].strip()}
    return {"action": value}


def variables_in(value) -> list[str]:
    """Every ``${...}`` in a string, list or mapping (keys included)."""
    found: list[str] = []
    if isinstance(value, str):
        found += VARIABLE_RE.findall(value.replace("$$", ""))
    elif isinstance(value, dict):
        for k, v in value.items():
            found += variables_in(k) + variables_in(v)
    elif isinstance(value, list):
        for v in value:
            found += variables_in(v)
    return found


def _check_variable(name: str, earlier: list[str], ctx: Context) -> str | None:
    name = name.strip()
    if name in BUILTIN_VARIABLES:
        return None
    parts = name.split(".")
    head = parts[0]
    if head == "TRIGGER" and len(parts) == 2:
        if parts[1] in TRIGGER_FIELDS:
            return None
        return f"Unknown trigger field '{parts[1]}' (known: {', '.join(TRIGGER_FIELDS)})."
    if head == "STEPS" and len(parts) == 3:
        if parts[1] not in earlier:
            return f"'{parts[1]}' is not a step before this one."
        if parts[2] not in STEP_FIELDS:
            return f"Unknown step field '{parts[2]}' (known: {', '.join(STEP_FIELDS)})."
        return None
    if head == "SECRET" and len(parts) == 2:
        if parts[1] in ctx.secrets:
            return None
        return f"No secret named '{parts[1]}' (create it under /v2/secrets first)."
    return f"Undefined variable '${{{name}}}'."


def validate(parsed: Parsed, ctx: Context) -> dict:
    """Return the normalised spec or raise PlaybookInvalid with every problem found."""
    data = parsed.data
    if not isinstance(data, dict):
        raise PlaybookInvalid([parsed.problem("", "The document must be a mapping.")])
    problems = [
        parsed.problem(_schema_path(e), e.message) for e in _best(_VALIDATOR.iter_errors(data))
    ]
    if problems:
        raise PlaybookInvalid(problems)
    trigger = data["trigger"]
    if "output_regex" in trigger:
        try:
            re.compile(trigger["output_regex"])
        except re.error as exc:
            problems.append(parsed.problem("trigger.output_regex", f"Not a valid regex: {exc}"))
    for key in ("verify_window", "approval"):
        value = data.get(key)
        if key == "approval" and isinstance(value, str) and value.startswith("timeout:"):
            value = value.split(":", 1)[1]
        elif key == "approval":
            continue
        if value is not None:
            try:
                seconds(value)
            except ValueError as exc:
                problems.append(parsed.problem(key, str(exc)))
    names = [s["name"] for s in data["steps"]]
    steps: list[dict] = []
    for index, step in enumerate(data["steps"]):
        base = f"steps[{index}]"
        if step["name"] in names[:index]:
            problems.append(
                parsed.problem(f"{base}.name", f"Step name '{step['name']}' is used twice.")
            )
        for key in ("timeout", "duration", "backoff", "interval"):
            if key in step:
                try:
                    value = seconds(step[key])
                except ValueError as exc:
                    problems.append(parsed.problem(f"{base}.{key}", str(exc)))
                    continue
                if value > MAX_TIMEOUT_SECONDS:
                    problems.append(
                        parsed.problem(f"{base}.{key}", f"At most {MAX_TIMEOUT_SECONDS // 3600}h.")
                    )
        on_failure = _on_failure(step.get("on_failure"))
        if on_failure["action"] == "goto":
            target = on_failure["step"]
            if target not in names:
                problems.append(parsed.problem(f"{base}.on_failure", f"No step named '{target}'."))
            elif names.index(target) <= index:
                problems.append(
                    parsed.problem(
                        f"{base}.on_failure",
                        f"goto '{target}' goes back to an earlier step and makes a loop; "
                        "use retries to repeat a step.",
                    )
                )
        for where, value in (
            ("url", step.get("url")),
            ("headers", step.get("headers")),
            ("body", step.get("body")),
            ("args", step.get("args")),
            ("message", step.get("message")),
        ):
            for variable in variables_in(value):
                why = _check_variable(variable, names[:index], ctx)
                if why:
                    problems.append(parsed.problem(f"{base}.{where}", why))
        problems += _check_step(parsed, base, step, names[:index], ctx)
        steps.append(_normalise_step(step, on_failure))
    if problems:
        raise PlaybookInvalid(problems)
    approval = (data.get("approval") or "none").replace(" ", "")
    return {
        "name": data["name"],
        "description": data.get("description", ""),
        "mode": data.get("mode", "active"),
        "approval": approval,
        "four_eyes": data.get("four_eyes", False),
        "approvers": data.get("approvers", 1),
        "max_concurrent": data.get("max_concurrent", 10),
        "verify_window_seconds": seconds(data.get("verify_window", "10m")),
        "trigger": {
            "service_pattern": trigger["service_pattern"],
            "consecutive_failures": trigger.get("consecutive_failures", 1),
            "exit_codes": trigger.get("exit_codes"),
            "output_regex": trigger.get("output_regex"),
        },
        "steps": steps,
    }


def _check_step(parsed: Parsed, base: str, step: dict, earlier: list[str], ctx: Context):
    problems: list[Problem] = []
    kind = step["type"]
    if kind == "script":
        script = ctx.scripts.get(step["script"])
        if script is None:
            problems.append(
                parsed.problem(f"{base}.script", f"No registered script named '{step['script']}'.")
            )
            return problems
        target = step.get("target") or {"local": True}
        if "local" in target and not script["run_local"]:
            problems.append(
                parsed.problem(f"{base}.target", "This script may not run on the Medic worker.")
            )
        if ("agent" in target or "labels" in target) and not script["run_on_agents"]:
            problems.append(parsed.problem(f"{base}.target", "This script may not run on agents."))
        if "agent" in target and target["agent"] not in ctx.agents:
            problems.append(
                parsed.problem(f"{base}.target.agent", f"No agent named '{target['agent']}'.")
            )
        for label in target.get("labels") or []:
            if label not in ctx.labels:
                problems.append(
                    parsed.problem(f"{base}.target.labels", f"No agent carries label '{label}'.")
                )
        problems += _check_args(parsed, f"{base}.args", step.get("args") or {}, script)
        if any(v.strip().startswith("SECRET.") for v in variables_in(step.get("args") or {})):
            # Job arguments are stored and shown by GET /v2/jobs; a secret must not be one.
            problems.append(
                parsed.problem(
                    f"{base}.args",
                    "Secrets cannot be script arguments (arguments are stored with the job); "
                    "give the script its secret on the host.",
                )
            )
    elif kind == "condition":
        check = step["check"]
        if check == "service_status" and step.get("status", "up") != "up":
            problems.append(parsed.problem(f"{base}.status", "Only 'up' can be checked."))
        if check == "step":
            ref = step.get("step")
            if not ref:
                problems.append(parsed.problem(base, "A step check names the 'step' it looks at."))
            elif ref not in earlier:
                problems.append(parsed.problem(f"{base}.step", f"'{ref}' is not an earlier step."))
            if not any(k in step for k in ("equals", "matches", "in")):
                problems.append(parsed.problem(base, "Give equals, matches or in."))
            if "matches" in step:
                try:
                    re.compile(step["matches"])
                except re.error as exc:
                    problems.append(parsed.problem(f"{base}.matches", f"Not a valid regex: {exc}"))
    elif kind == "webhook":
        success = step.get("success") or {}
        if "regex" in success:
            try:
                re.compile(success["regex"])
            except re.error as exc:
                problems.append(
                    parsed.problem(f"{base}.success.regex", f"Not a valid regex: {exc}")
                )
        if "equals" in success and "json_path" not in success:
            problems.append(parsed.problem(f"{base}.success", "equals needs a json_path."))
        if "json_path" in success and not re.match(
            r"^\$?(\.[A-Za-z0-9_-]+|\[\d+\])+$", success["json_path"]
        ):
            problems.append(
                parsed.problem(
                    f"{base}.success.json_path", "Use a simple path like $.status or $.items[0].ok."
                )
            )
    return problems


def _check_args(parsed: Parsed, path: str, args: dict, script: dict) -> list[Problem]:
    """Arguments with no variable are checked against the script's schema now; templated ones
    are checked again when rendered, before anything runs."""
    literal = {k: v for k, v in args.items() if not variables_in(v)}
    schema = dict(script["args_schema"] or {})
    schema.pop("required", None)
    problems = []
    for error in jsonschema.Draft202012Validator(schema).iter_errors(literal):
        where = _path_join(path, error.absolute_path[0]) if error.absolute_path else path
        problems.append(parsed.problem(where, error.message))
    missing = set(script["args_schema"].get("required") or []) - set(args)
    if missing:
        problems.append(parsed.problem(path, f"Missing argument(s): {', '.join(sorted(missing))}."))
    return problems


def _normalise_step(step: dict, on_failure: dict) -> dict:
    kind = step["type"]
    out: dict[str, Any] = {
        "name": step["name"],
        "type": kind,
        "timeout_seconds": seconds(step["timeout"])
        if "timeout" in step
        else DEFAULT_TIMEOUTS[kind],
        "retries": step.get("retries", 0),
        "on_failure": on_failure,
    }
    if kind == "webhook":
        success = step.get("success") or {}
        out.update(
            url=step["url"],
            method=step.get("method", "POST"),
            headers={k: str(v) for k, v in (step.get("headers") or {}).items()},
            body=step.get("body"),
            backoff_seconds=seconds(step.get("backoff", "5s")),
            success={
                "status": success.get("status"),
                "json_path": success.get("json_path"),
                "equals": success.get("equals"),
                "regex": success.get("regex"),
                "has_equals": "equals" in success,
            },
        )
    elif kind == "script":
        out.update(
            script=step["script"],
            args=step.get("args") or {},
            target=step.get("target") or {"local": True},
            success_exit_codes=step.get("success_exit_codes") or [0],
        )
    elif kind == "wait":
        out.update(duration_seconds=seconds(step["duration"]))
        out["timeout_seconds"] = out["duration_seconds"]
    elif kind == "condition":
        out.update(
            check=step["check"],
            interval_seconds=seconds(step.get("interval", "2s")),
        )
        if step["check"] == "step":
            out.update(
                step=step["step"],
                field=step.get("field", "status"),
                equals=step.get("equals"),
                has_equals="equals" in step,
                matches=step.get("matches"),
                one_of=step.get("in"),
            )
    elif kind == "escalate":
        out.update(message=step.get("message", ""))
    return out
