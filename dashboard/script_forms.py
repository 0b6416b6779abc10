"""The script form: register a script or write its next version.

The form only turns text into the API's shapes (argv lines into a list, the schema's JSON into an
object, comma-separated labels into a list); the API's serializers (``remediation.api``) and then
``remediation.services.script_create`` / ``script_update`` check it, so the portal and
``/v2/scripts`` accept and refuse the same scripts with the same messages.
"""

from __future__ import annotations

import json

from django import forms

from dashboard.forms import run_serializer
from remediation.api import ScriptCreateIn, ScriptUpdateIn
from remediation.models import ScriptVersion
from remediation.services import DEFAULT_SCHEMA

CONTENT_CHOICES = [
    ("command", "A command on the Medic worker (argv, no shell)"),
    ("body", "A script body (starts with #!)"),
    ("agent", "Only a file on agent hosts (known by its sha256)"),
]
LIMIT_FIELDS = (
    ("timeout_seconds", "Timeout (seconds)", 60, "Wall-clock limit, 1 to 3600."),
    ("cpu_seconds", "CPU (seconds)", 30, ""),
    ("memory_mb", "Memory (MB)", 256, ""),
    ("open_files", "Open files", 64, ""),
    ("processes", "Processes", 32, ""),
    ("output_bytes", "Output kept (bytes)", 65536, "The tail kept of stdout and of stderr."),
)


def _mono(rows: int) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, "class": "mono", "spellcheck": "false"})


class ScriptForm(forms.Form):
    name = forms.CharField(
        max_length=128, help_text="A-Z a-z 0-9 _ . - (playbooks and runs refer to it)."
    )
    description = forms.CharField(max_length=500, required=False)
    content = forms.ChoiceField(
        choices=CONTENT_CHOICES,
        widget=forms.RadioSelect,
        initial="command",
        label="What runs",
    )
    command = forms.CharField(
        required=False,
        widget=_mono(3),
        label="Command",
        help_text="One argument per line; the first is the program's absolute path.",
    )
    body = forms.CharField(
        required=False,
        strip=False,
        widget=_mono(10),
        label="Body",
        help_text="Executed directly: its #! line names the interpreter. Its sha256 is computed.",
    )
    sha256 = forms.CharField(
        required=False,
        max_length=64,
        label="sha256 on agent hosts",
        help_text="Of the file agents hold (medic-agent hash FILE). Needed to run on agents.",
    )
    args_schema = forms.CharField(
        widget=_mono(8),
        label="Arguments schema (JSON)",
        help_text='JSON Schema 2020-12; the top level is {"type": "object", ..., '
        '"additionalProperties": false}. Arguments reach the script as --name=value.',
    )
    run_local = forms.BooleanField(required=False, label="May run on the Medic worker (sandbox)")
    run_on_agents = forms.BooleanField(required=False, label="May run on agents")
    agent_labels = forms.CharField(
        required=False,
        max_length=2000,
        label="Agent labels required",
        help_text="Comma-separated; an agent must carry all of them (blank: any agent).",
    )

    def __init__(self, *args, version: ScriptVersion | None = None, **kwargs):
        self.version = version
        super().__init__(*args, **kwargs)
        for name, label, default, help_text in LIMIT_FIELDS:
            self.fields[name] = forms.IntegerField(
                label=label, initial=default, help_text=help_text
            )
        if version is not None:
            del self.fields["name"]
            self.initial.update(initial_of(version))
        else:
            self.fields["args_schema"].initial = json.dumps(DEFAULT_SCHEMA, indent=2)

    def limit_fields(self):
        return [self[name] for name, *_ in LIMIT_FIELDS]

    def clean_args_schema(self) -> dict:
        text = self.cleaned_data["args_schema"]
        try:
            return json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from exc

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        kind = data["content"]
        payload = {
            "description": data.get("description", ""),
            "args_schema": data["args_schema"],
            "run_local": data["run_local"],
            "run_on_agents": data["run_on_agents"],
            "agent_labels": [x.strip() for x in data["agent_labels"].split(",") if x.strip()],
            **{name: data[name] for name, *_ in LIMIT_FIELDS},
        }
        # Only the chosen kind's fields are read; the others are cleared in the new version.
        if kind == "command":
            lines = data["command"].splitlines()
            payload.update(command=[x.strip() for x in lines if x.strip()], body="")
            payload["sha256"] = data["sha256"].strip()
        elif kind == "body":
            # Browsers send a textarea's lines with CRLF; the script is stored as written, in LF.
            payload.update(command=[], body=data["body"].replace("\r\n", "\n"))
        else:
            payload.update(command=[], body="", sha256=data["sha256"].strip())
        if self.version is None:
            serializer = ScriptCreateIn(data={"name": data["name"], **payload})
        else:
            serializer = ScriptUpdateIn(data=payload)
        checked = run_serializer(self, serializer)
        return dict(checked) if checked is not None else data


def initial_of(version: ScriptVersion) -> dict:
    """The form's fields for an existing version (its next version starts from it)."""
    if version.body:
        kind = "body"
    elif version.command:
        kind = "command"
    else:
        kind = "agent"
    return {
        "description": version.description,
        "content": kind,
        "command": "\n".join(version.command),
        "body": version.body,
        "sha256": "" if version.body else version.sha256,
        "args_schema": json.dumps(version.args_schema, indent=2),
        "run_local": version.run_local,
        "run_on_agents": version.run_on_agents,
        "agent_labels": ", ".join(version.agent_labels),
        **{name: getattr(version, name) for name, *_ in LIMIT_FIELDS},
    }
