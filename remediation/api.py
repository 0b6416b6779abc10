"""v2 API for registered scripts, their runs (jobs) and agents. Thin: serializers validate and
shape, services write. Scripts and agents are managed with admin keys; running a script needs
write, reading jobs and agents needs read."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from medic.errors import InvalidInput
from medic.models import actor_label
from medic.pagination import CursorPage, NumberedPage
from remediation import agents as agent_services
from remediation import selectors, services
from remediation.models import Agent, Job, JobState, ScriptVersion

_NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="Script name.")
_AGENT = OpenApiParameter("name", str, OpenApiParameter.PATH, description="Agent name.")
_JOB = OpenApiParameter("job_id", str, OpenApiParameter.PATH, description="Job id (UUID).")


# --- Serializers ------------------------------------------------------------------------------


class LimitsMixin(serializers.Serializer):
    timeout_seconds = serializers.IntegerField(min_value=1, max_value=services.MAX_TIMEOUT_SECONDS)
    cpu_seconds = serializers.IntegerField(min_value=1, max_value=86_400)
    memory_mb = serializers.IntegerField(min_value=16, max_value=65_536)
    open_files = serializers.IntegerField(min_value=8, max_value=65_536)
    processes = serializers.IntegerField(min_value=1, max_value=4096)
    output_bytes = serializers.IntegerField(min_value=1024, max_value=1024 * 1024)


class ScriptSpecIn(LimitsMixin):
    description = serializers.CharField(max_length=500, allow_blank=True)
    command = serializers.ListField(
        child=serializers.CharField(), help_text="argv of the program (absolute path; no shell)."
    )
    body = serializers.CharField(
        allow_blank=True, trim_whitespace=False, help_text="A script starting with '#!'."
    )
    sha256 = serializers.CharField(
        allow_blank=True,
        help_text="sha256 of the file agents hold (computed from the body when one is given).",
    )
    args_schema = serializers.JSONField(
        help_text='JSON Schema (2020-12) of the arguments: {"type": "object", '
        '"properties": {...}, "additionalProperties": false}.'
    )
    run_local = serializers.BooleanField()
    run_on_agents = serializers.BooleanField()
    agent_labels = serializers.ListField(child=serializers.CharField(max_length=64))


class ScriptCreateIn(ScriptSpecIn):
    name = serializers.CharField(max_length=128)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if name != "name":
                field.required = False


class ScriptUpdateIn(ScriptSpecIn):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class ScriptVersionOut(serializers.ModelSerializer):
    name = serializers.CharField(source="script.name", read_only=True)
    enabled = serializers.BooleanField(source="script.enabled", read_only=True)
    limits = serializers.SerializerMethodField()

    class Meta:
        model = ScriptVersion
        fields = [
            "name",
            "version",
            "enabled",
            "description",
            "command",
            "body",
            "sha256",
            "args_schema",
            "timeout_seconds",
            "limits",
            "run_local",
            "run_on_agents",
            "agent_labels",
            "created_at",
            "created_by",
        ]

    def get_limits(self, obj: ScriptVersion) -> dict[str, int]:
        return obj.limits


class TargetIn(serializers.Serializer):
    agent = serializers.CharField(required=False, max_length=100)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, allow_empty=False
    )
    local = serializers.BooleanField(required=False)

    def validate(self, attrs):
        chosen = [k for k in ("agent", "labels", "local") if k in attrs]
        if len(chosen) != 1 or attrs.get("local") is False:
            raise serializers.ValidationError(
                'Give exactly one of {"agent": NAME}, {"labels": [...]} or {"local": true}.'
            )
        return attrs


class RunIn(serializers.Serializer):
    target = TargetIn()
    args = serializers.DictField(required=False, default=dict)


class JobOut(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    batch = serializers.CharField(read_only=True)
    script = serializers.CharField(source="script_version.script.name", read_only=True)
    script_version = serializers.IntegerField(source="script_version.version", read_only=True)
    agent = serializers.CharField(source="agent.name", read_only=True, allow_null=True)
    alert = serializers.IntegerField(source="alert_id", read_only=True, allow_null=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "batch",
            "script",
            "script_version",
            "target",
            "agent",
            "args",
            "state",
            "exit_code",
            "signal",
            "timed_out",
            "duration_ms",
            "stdout_tail",
            "stderr_tail",
            "skip_reason",
            "detail",
            "alert",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]


class AgentOut(serializers.ModelSerializer):
    service = serializers.CharField(
        source="service.heartbeat_name", read_only=True, allow_null=True
    )
    status = serializers.SerializerMethodField()
    api_key_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "enabled",
            "status",
            "labels",
            "reported_labels",
            "hostname",
            "os",
            "arch",
            "agent_version",
            "scripts",
            "service",
            "api_key_id",
            "registered_at",
            "last_seen_at",
            "memory_rss_bytes",
            "memory_reported_at",
            "created_at",
            "created_by",
        ]

    def get_status(self, obj: Agent) -> str:
        """new (never registered), online, offline (its service is down) or disabled."""
        return selectors.agent_status(obj)


class AgentIssuedOut(AgentOut):
    key = serializers.CharField(help_text="The agent's API key. Shown once; store it now.")

    class Meta(AgentOut.Meta):
        fields = [*AgentOut.Meta.fields, "key"]


class AgentIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list
    )


# --- Scripts ----------------------------------------------------------------------------------


def _current(script) -> ScriptVersion:
    return script.versions.select_related("script").get(version=script.current_version)


class ScriptList(APIView):
    required_scope = "admin"

    @extend_schema(operation_id="scripts_list", responses=ScriptVersionOut(many=True))
    def get(self, request):
        paginator = NumberedPage()
        page = paginator.paginate_queryset(selectors.script_list(), request, view=self)
        return paginator.get_paginated_response(
            ScriptVersionOut([_current(s) for s in page], many=True).data
        )

    @extend_schema(
        operation_id="scripts_create", request=ScriptCreateIn, responses={201: ScriptVersionOut}
    )
    def post(self, request):
        data = ScriptCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.script_create(actor=actor_label(request.auth), **data.validated_data)
        return Response(ScriptVersionOut(version).data, status=status.HTTP_201_CREATED)


class ScriptDetail(APIView):
    required_scope = "admin"

    @extend_schema(operation_id="scripts_get", parameters=[_NAME], responses=ScriptVersionOut)
    def get(self, request, name: str):
        return Response(ScriptVersionOut(_current(selectors.script_get(name))).data)

    @extend_schema(
        operation_id="scripts_update",
        parameters=[_NAME],
        request=ScriptUpdateIn,
        responses=ScriptVersionOut,
        description="Writes a new version (the current one with these changes) and an audit "
        "row; re-enables a disabled script.",
    )
    def patch(self, request, name: str):
        data = ScriptUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.script_update(
            name=name, actor=actor_label(request.auth), **data.validated_data
        )
        return Response(ScriptVersionOut(version).data)

    @extend_schema(
        operation_id="scripts_disable",
        parameters=[_NAME],
        responses={204: None},
        description="Disables the script: its versions stay (jobs refer to them), runs are "
        "refused until it is changed again.",
    )
    def delete(self, request, name: str):
        services.script_disable(name=name, actor=actor_label(request.auth))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScriptVersions(APIView):
    required_scope = "admin"

    @extend_schema(
        operation_id="scripts_versions", parameters=[_NAME], responses=ScriptVersionOut(many=True)
    )
    def get(self, request, name: str):
        script = selectors.script_get(name)
        paginator = NumberedPage()
        page = paginator.paginate_queryset(
            script.versions.select_related("script").order_by("-version"), request, view=self
        )
        return paginator.get_paginated_response(ScriptVersionOut(page, many=True).data)


class ScriptRun(APIView):
    """Queue a run (write scope): the arguments are checked against the script's schema."""

    @extend_schema(
        operation_id="scripts_run",
        parameters=[_NAME],
        request=RunIn,
        responses={
            201: inline_serializer("ScriptRunQueued", {"jobs": JobOut(many=True)}),
        },
    )
    def post(self, request, name: str):
        data = RunIn(data=request.data)
        data.is_valid(raise_exception=True)
        target = data.validated_data["target"]
        queued = services.script_run(
            name=name,
            target=services.RunTarget(
                local=bool(target.get("local")),
                agent=target.get("agent"),
                labels=target.get("labels"),
            ),
            args=data.validated_data["args"],
            actor=actor_label(request.auth),
        )
        return Response({"jobs": JobOut(queued, many=True).data}, status=status.HTTP_201_CREATED)


# --- Jobs -------------------------------------------------------------------------------------


class JobPage(CursorPage):
    ordering = "-created_at"


class JobList(APIView):
    @extend_schema(
        operation_id="jobs_list",
        parameters=[
            OpenApiParameter("state", str, enum=JobState.values),
            OpenApiParameter("agent", str),
            OpenApiParameter("script", str),
        ],
        responses=JobOut(many=True),
    )
    def get(self, request):
        state = request.query_params.get("state")
        if state and state not in JobState.values:
            raise InvalidInput(fields={"state": [f"One of {', '.join(JobState.values)}."]})
        qs = selectors.job_list(
            state=state,
            agent=request.query_params.get("agent"),
            script=request.query_params.get("script"),
        )
        paginator = JobPage()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(JobOut(page, many=True).data)


class JobDetail(APIView):
    @extend_schema(operation_id="jobs_get", parameters=[_JOB], responses=JobOut)
    def get(self, request, job_id: str):
        return Response(JobOut(selectors.job_get(job_id)).data)


# --- Agents -----------------------------------------------------------------------------------


class AgentList(APIView):
    @property
    def required_scope(self) -> str | None:
        # Listing needs read; creating an agent issues a key, which is an admin's act.
        return "admin" if self.request.method == "POST" else None

    @extend_schema(operation_id="agents_list", responses=AgentOut(many=True))
    def get(self, request):
        paginator = NumberedPage()
        page = paginator.paginate_queryset(selectors.agent_list(), request, view=self)
        return paginator.get_paginated_response(AgentOut(page, many=True).data)

    @extend_schema(
        operation_id="agents_create",
        request=AgentIn,
        responses={201: AgentIssuedOut},
        description="Creates an agent and its API key (scope `agent`, bound to it). The key is "
        "in the response only: put it in the agent's key_file.",
    )
    def post(self, request):
        data = AgentIn(data=request.data)
        data.is_valid(raise_exception=True)
        issued = agent_services.agent_create(actor=actor_label(request.auth), **data.validated_data)
        body = AgentOut(issued.agent).data
        body["key"] = issued.secret
        return Response(body, status=status.HTTP_201_CREATED)


class AgentDetail(APIView):
    @property
    def required_scope(self) -> str | None:
        return "admin" if self.request.method == "DELETE" else None

    @extend_schema(operation_id="agents_get", parameters=[_AGENT], responses=AgentOut)
    def get(self, request, name: str):
        return Response(AgentOut(selectors.agent_get(name)).data)

    @extend_schema(
        operation_id="agents_disable",
        parameters=[_AGENT],
        responses={204: None},
        description="Disables the agent and revokes its key.",
    )
    def delete(self, request, name: str):
        agent_services.agent_disable(name=name, actor=actor_label(request.auth))
        return Response(status=status.HTTP_204_NO_CONTENT)
