"""v2 API for playbooks, executions, circuit breakers and the stop-all switch.

Thin: the document goes to services as text (YAML, or JSON, which is YAML too), so errors carry
the line they point at whichever format was sent.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from heartbeats.services import service_get
from medic.errors import InvalidInput, MedicError
from medic.models import actor_label
from medic.pagination import CursorPage, NumberedPage
from remediation.playbooks import engine, selectors, services
from remediation.playbooks.models import (
    BreakerScope,
    Execution,
    ExecutionEvent,
    ExecutionState,
    ExecutionStep,
    Playbook,
    PlaybookVersion,
    RemediationSwitch,
    TriggerRecord,
)
from remediation.playbooks.preview import playbook_preview
from remediation.playbooks.spec import SCHEMA
from remediation.playbooks.switch import remediation_stopped

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="Playbook name.")
_ID = OpenApiParameter("execution_id", int, OpenApiParameter.PATH, description="Execution id.")
_REASON = OpenApiParameter(
    "reason", str, description="Why this change (kept with the version; X-Change-Reason works too)."
)
_DOCUMENT = {
    "application/yaml": {"type": "string", "description": "The playbook as YAML."},
    "application/json": {"type": "object", "description": "The playbook as JSON (same shape)."},
}


class YamlParser(BaseParser):
    """Declares the YAML media type; views read the body text themselves."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read().decode()


def _document(request) -> str:
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if content_type not in (*YAML_TYPES, "application/json"):
        raise MedicError(
            "Send the playbook as application/yaml (or application/json).",
            code="unsupported_media_type",
        ).with_status(415)
    try:
        return request.body.decode()
    except UnicodeDecodeError as exc:
        raise InvalidInput("The body is not UTF-8.", code="playbook_invalid") from exc


def _reason(request) -> str:
    return request.query_params.get("reason") or request.headers.get("X-Change-Reason", "")


# --- Serializers ------------------------------------------------------------------------------


class PlaybookOut(serializers.ModelSerializer):
    version = serializers.IntegerField(source="current_version")
    mode = serializers.SerializerMethodField()
    approval = serializers.SerializerMethodField()
    description = serializers.SerializerMethodField()
    demoted = serializers.SerializerMethodField()

    class Meta:
        model = Playbook
        fields = [
            "id",
            "name",
            "version",
            "mode",
            "approval",
            "description",
            "enabled",
            "demoted",
            "demoted_at",
            "demoted_reason",
            "created_at",
            "updated_at",
        ]

    def _spec(self, obj: Playbook) -> dict:
        cache = self.context.setdefault("specs", {})
        if obj.pk not in cache:
            cache[obj.pk] = selectors.version_get(obj).spec
        return cache[obj.pk]

    def get_mode(self, obj: Playbook) -> str:
        return self._spec(obj)["mode"]

    def get_approval(self, obj: Playbook) -> str:
        """The document's approval; "required" while the playbook is demoted."""
        return "required" if obj.demoted_at else self._spec(obj)["approval"]

    def get_description(self, obj: Playbook) -> str:
        return self._spec(obj)["description"]

    def get_demoted(self, obj: Playbook) -> bool:
        return obj.demoted_at is not None


class VersionOut(serializers.ModelSerializer):
    name = serializers.CharField(source="playbook.name")
    score = serializers.SerializerMethodField()

    class Meta:
        model = PlaybookVersion
        fields = [
            "name",
            "version",
            "mode",
            "author",
            "reason",
            "created_at",
            "source",
            "spec",
            "diff",
            "score",
        ]

    def get_score(self, obj: PlaybookVersion) -> dict:
        """Scored executions, recovered ones and the success rate of this version."""
        scores = self.context.get("scores") or {}
        return scores.get(obj.version, {"scored": 0, "recovered": 0, "success_rate": None})


class PlaybookDetailOut(PlaybookOut):
    current = serializers.SerializerMethodField()

    class Meta(PlaybookOut.Meta):
        fields = [*PlaybookOut.Meta.fields, "current"]

    def get_current(self, obj: Playbook) -> dict:
        version = selectors.version_get(obj)
        return VersionOut(version, context={"scores": selectors.version_scores(obj)}).data


class StepOut(serializers.ModelSerializer):
    class Meta:
        model = ExecutionStep
        fields = ["name", "type", "state"]


class StepDetailOut(serializers.ModelSerializer):
    class Meta:
        model = ExecutionStep
        fields = [
            "position",
            "name",
            "type",
            "state",
            "attempts",
            "claims",
            "started_at",
            "finished_at",
            "deadline_at",
            "duration_ms",
            "request",
            "result",
        ]


class EventOut(serializers.ModelSerializer):
    class Meta:
        model = ExecutionEvent
        fields = ["at", "kind", "from_state", "to_state", "step", "attempt", "message", "details"]


class ExecutionOut(serializers.ModelSerializer):
    playbook = serializers.CharField(source="playbook.name")
    version = serializers.IntegerField(source="version.version")
    service = serializers.CharField(source="service_name")
    alert = serializers.IntegerField(source="alert_id", allow_null=True)
    steps = StepOut(many=True)

    class Meta:
        model = Execution
        fields = [
            "id",
            "playbook",
            "version",
            "service",
            "state",
            "mode",
            "automatic",
            "alert",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "outcome",
            "error",
            "steps",
        ]


class ExecutionDetailOut(ExecutionOut):
    steps = StepDetailOut(many=True)
    events = EventOut(many=True)
    trigger = serializers.JSONField()

    class Meta(ExecutionOut.Meta):
        fields = [*ExecutionOut.Meta.fields, "trigger", "verify_until", "outcome_at", "events"]


class TriggerRecordOut(serializers.ModelSerializer):
    execution = serializers.IntegerField(source="execution_id", allow_null=True)

    class Meta:
        model = TriggerRecord
        fields = [
            "at",
            "service_name",
            "event_id",
            "event_kind",
            "decision",
            "execution",
            "message",
        ]


class BreakerOut(serializers.Serializer):
    scope = serializers.CharField()
    key = serializers.CharField()
    open = serializers.BooleanField()
    opened_at = serializers.DateTimeField(allow_null=True)
    opened_reason = serializers.CharField()
    counted_since = serializers.DateTimeField(allow_null=True)
    reset_at = serializers.DateTimeField(allow_null=True)
    reset_by = serializers.CharField()


def _breaker(b) -> dict:
    return {
        "scope": b.scope,
        "key": b.key,
        "open": b.opened_at is not None,
        "opened_at": b.opened_at,
        "opened_reason": b.opened_reason,
        "counted_since": b.counted_since,
        "reset_at": b.reset_at,
        "reset_by": b.reset_by,
    }


class SwitchOut(serializers.Serializer):
    stopped = serializers.BooleanField()
    reason = serializers.CharField(help_text="Why it is stopped ('' when it runs).")
    changed_by = serializers.CharField()
    changed_at = serializers.DateTimeField(allow_null=True)
    running = serializers.IntegerField(help_text="Executions running or waiting now.")


class SwitchIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class CancelIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


# --- Playbooks --------------------------------------------------------------------------------


def _saved_response(saved: services.Saved, created_status: int) -> Response:
    body = PlaybookOut(saved.playbook).data
    body["changed"] = saved.changed
    return Response(body, status=created_status if saved.created else status.HTTP_200_OK)


class PlaybookList(APIView):
    parser_classes = [YamlParser, JSONParser]

    @property
    def required_scope(self) -> str | None:
        return "admin" if self.request.method == "POST" else None

    @extend_schema(operation_id="playbooks_list", responses=PlaybookOut(many=True))
    def get(self, request):
        paginator = NumberedPage()
        page = paginator.paginate_queryset(selectors.playbook_list(), request, view=self)
        return paginator.get_paginated_response(PlaybookOut(page, many=True).data)

    @extend_schema(
        operation_id="playbooks_create",
        parameters=[_REASON],
        request=_DOCUMENT,
        responses={201: PlaybookOut},
        description="Creates a playbook from its YAML document (version 1). An invalid "
        "document answers 422; each field error carries the YAML line.",
    )
    def post(self, request):
        saved = services.playbook_save(
            document=_document(request),
            actor=actor_label(request.auth),
            reason=_reason(request),
            create_only=True,
        )
        return _saved_response(saved, status.HTTP_201_CREATED)


class PlaybookSchema(APIView):
    @extend_schema(operation_id="playbooks_schema", responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        """The JSON Schema of a playbook document (2020-12)."""
        return Response(SCHEMA)


class PlaybookValidate(APIView):
    parser_classes = [YamlParser, JSONParser]

    @extend_schema(
        operation_id="playbooks_validate",
        request=_DOCUMENT,
        responses={
            200: inline_serializer(
                "PlaybookValid",
                {"valid": serializers.BooleanField(), "spec": serializers.JSONField()},
            )
        },
        description="Checks a document without saving it: 200 with the normalised spec, or 422.",
    )
    def post(self, request):
        _, spec = services.playbook_validate(document=_document(request))
        return Response({"valid": True, "spec": spec})


class PreviewStepOut(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    would = serializers.JSONField(
        allow_null=True, help_text="What the step would do, variables resolved, secrets masked."
    )
    error = serializers.CharField(help_text="Why the step cannot be resolved ('' when it can).")


class PreviewTriggerOut(serializers.Serializer):
    event_id = serializers.IntegerField()
    kind = serializers.CharField()
    at = serializers.DateTimeField()
    alert_id = serializers.IntegerField(allow_null=True)
    exit_code = serializers.IntegerField(allow_null=True)
    fires = serializers.BooleanField()
    why_not = serializers.CharField()


class PreviewOut(serializers.Serializer):
    service = serializers.CharField()
    since = serializers.DateTimeField()
    fired = serializers.IntegerField()
    steps = PreviewStepOut(many=True)
    triggers = PreviewTriggerOut(many=True)


class PlaybookPreview(APIView):
    """Read-only: it runs nothing and saves nothing, so a read key may ask."""

    parser_classes = [YamlParser, JSONParser]
    required_scope = "read"

    @extend_schema(
        operation_id="playbooks_preview",
        parameters=[
            OpenApiParameter(
                "service", str, required=True, description="Service id or heartbeat name."
            )
        ],
        request=_DOCUMENT,
        responses={200: PreviewOut},
        description="A document (saved or not) against a real service: each step as the engine "
        "would send it (variables resolved, secrets masked) and, for each of the service's "
        "trigger events of the last 7 days, whether this trigger would have fired and why not. "
        "An invalid document answers 422 like validate; an unknown service 404.",
    )
    def post(self, request):
        ref = request.query_params.get("service", "").strip()
        if not ref:
            raise InvalidInput("Name the service: ?service=<id or heartbeat name>.")
        _, spec = services.playbook_validate(document=_document(request))
        result = playbook_preview(spec=spec, service=service_get(ref))
        return Response(PreviewOut(result).data)


class PlaybookDetail(APIView):
    parser_classes = [YamlParser, JSONParser]

    @property
    def required_scope(self) -> str | None:
        return None if self.request.method in ("GET", "HEAD", "OPTIONS") else "admin"

    @extend_schema(operation_id="playbooks_get", parameters=[_NAME], responses=PlaybookDetailOut)
    def get(self, request, name: str):
        return Response(PlaybookDetailOut(selectors.playbook_get(name)).data)

    @extend_schema(
        operation_id="playbooks_update",
        parameters=[_NAME, _REASON],
        request=_DOCUMENT,
        responses={200: PlaybookOut, 201: PlaybookOut},
        description="Saves the document as the next version (executions in flight keep theirs); "
        "an unchanged document writes nothing. Creates the playbook if it does not exist (201).",
    )
    def put(self, request, name: str):
        saved = services.playbook_save(
            document=_document(request),
            actor=actor_label(request.auth),
            reason=_reason(request),
            name=name,
        )
        return _saved_response(saved, status.HTTP_201_CREATED)

    @extend_schema(operation_id="playbooks_disable", parameters=[_NAME], responses={204: None})
    def delete(self, request, name: str):
        """Disables the playbook: nothing triggers it; its versions and executions stay."""
        services.playbook_disable(name=name, actor=actor_label(request.auth))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PlaybookVersions(APIView):
    @extend_schema(
        operation_id="playbooks_versions", parameters=[_NAME], responses=VersionOut(many=True)
    )
    def get(self, request, name: str):
        playbook = selectors.playbook_get(name)
        paginator = NumberedPage()
        page = paginator.paginate_queryset(
            playbook.versions.select_related("playbook").order_by("-version"), request, view=self
        )
        context = {"scores": selectors.version_scores(playbook)}
        return paginator.get_paginated_response(VersionOut(page, many=True, context=context).data)


class PlaybookDiff(APIView):
    @extend_schema(
        operation_id="playbooks_diff",
        parameters=[
            _NAME,
            OpenApiParameter("from", int, description="Older version (default: to - 1)."),
            OpenApiParameter("to", int, description="Newer version (default: current)."),
        ],
        responses=inline_serializer(
            "PlaybookDiff",
            {
                "from": serializers.IntegerField(allow_null=True),
                "to": serializers.IntegerField(),
                "diff": serializers.CharField(),
            },
        ),
    )
    def get(self, request, name: str):
        playbook = selectors.playbook_get(name)
        try:
            to = int(request.query_params.get("to") or playbook.current_version)
            old = request.query_params.get("from")
            old = int(old) if old else to - 1
        except ValueError as exc:
            raise InvalidInput(fields={"from": ["Versions are whole numbers."]}) from exc
        new = selectors.version_get(playbook, to)
        previous = selectors.version_get(playbook, old) if old >= 1 else None
        diff = services.diff_text(
            previous.source if previous else "",
            new.source,
            name=playbook.name,
            old_version=previous.version if previous else None,
            new_version=new.version,
        )
        return Response(
            {"from": previous.version if previous else None, "to": new.version, "diff": diff}
        )


class PlaybookTriggers(APIView):
    @extend_schema(
        operation_id="playbooks_triggers",
        parameters=[_NAME],
        responses=TriggerRecordOut(many=True),
        description="Matching events newest first, with what was decided (started, "
        "already_running, circuit_open, playbook_limit, global_limit, remediation_stopped).",
    )
    def get(self, request, name: str):
        playbook = selectors.playbook_get(name)
        paginator = CursorPage()
        paginator.ordering = "-id"
        qs = TriggerRecord.objects.filter(playbook=playbook)
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(TriggerRecordOut(page, many=True).data)


# --- Executions -------------------------------------------------------------------------------


class ExecutionList(APIView):
    @extend_schema(
        operation_id="executions_list",
        parameters=[
            OpenApiParameter("playbook", str, description="Playbook name."),
            OpenApiParameter("service", str, description="Service heartbeat name."),
            OpenApiParameter("state", str, enum=ExecutionState.values),
        ],
        responses=ExecutionOut(many=True),
    )
    def get(self, request):
        state = request.query_params.get("state")
        if state is not None and state not in ExecutionState.values:  # "" too: not "any"
            raise InvalidInput(fields={"state": [f"One of {', '.join(ExecutionState.values)}."]})
        qs = selectors.execution_list(
            playbook=request.query_params.get("playbook"),
            service=request.query_params.get("service"),
            state=state,
        )
        paginator = CursorPage()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ExecutionOut(page, many=True).data)


class ExecutionDetail(APIView):
    @extend_schema(operation_id="executions_get", parameters=[_ID], responses=ExecutionDetailOut)
    def get(self, request, execution_id: int):
        return Response(ExecutionDetailOut(selectors.execution_get(execution_id)).data)


class ExecutionCancel(APIView):
    @extend_schema(
        operation_id="executions_cancel",
        parameters=[_ID],
        request=CancelIn,
        responses=ExecutionDetailOut,
        description="Cancels a pending, running or waiting execution: no further step starts "
        "(a step in flight finishes, its result is discarded). 409 if already finished.",
    )
    def post(self, request, execution_id: int):
        data = CancelIn(data=request.data)
        data.is_valid(raise_exception=True)
        engine.execution_cancel(
            execution_id=execution_id,
            actor=actor_label(request.auth),
            reason=data.validated_data["reason"],
        )
        return Response(ExecutionDetailOut(selectors.execution_get(execution_id)).data)


# --- Circuit breakers and the switch ----------------------------------------------------------


class BreakerList(APIView):
    @extend_schema(
        operation_id="circuit_breakers_list",
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("page", int)],
        responses=BreakerOut(many=True),
    )
    def get(self, request):
        """Every breaker that has counted runs; open ones stop automatic runs until reset. In
        pages, like every v2 list."""
        paginator = NumberedPage()
        page = paginator.paginate_queryset(selectors.breakers(), request, view=self)
        return paginator.get_paginated_response([_breaker(b) for b in page])


class BreakerReset(APIView):
    required_scope = "admin"

    @extend_schema(
        operation_id="circuit_breakers_reset",
        parameters=[
            OpenApiParameter("scope", str, OpenApiParameter.PATH, enum=BreakerScope.values),
            OpenApiParameter("key", str, OpenApiParameter.PATH, description="Playbook or service."),
        ],
        request=None,
        responses=BreakerOut,
    )
    def post(self, request, scope: str, key: str):
        breaker = services.breaker_reset(scope=scope, key=key, actor=actor_label(request.auth))
        return Response(_breaker(breaker))


def _switch() -> dict:
    switch = RemediationSwitch.objects.filter(pk=1).first()
    return {
        "stopped": bool(remediation_stopped()),
        "reason": remediation_stopped(),
        "changed_by": switch.changed_by if switch else "",
        "changed_at": switch.changed_at if switch else None,
        "running": selectors.open_count(),
    }


class RemediationStatus(APIView):
    @extend_schema(operation_id="remediation_status", responses=SwitchOut)
    def get(self, request):
        return Response(_switch())


class RemediationStop(APIView):
    required_scope = "admin"

    @extend_schema(
        operation_id="remediation_stop",
        request=SwitchIn,
        responses=SwitchOut,
        description="Stops all remediation now: no execution starts, no step runs (executions "
        "in flight hold where they are until resumed or cancelled).",
    )
    def post(self, request):
        data = SwitchIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.remediation_switch_set(
            stopped=True, actor=actor_label(request.auth), reason=data.validated_data["reason"]
        )
        return Response(_switch())


class RemediationResume(APIView):
    required_scope = "admin"

    @extend_schema(operation_id="remediation_resume", request=SwitchIn, responses=SwitchOut)
    def post(self, request):
        data = SwitchIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.remediation_switch_set(
            stopped=False, actor=actor_label(request.auth), reason=data.validated_data["reason"]
        )
        return Response(_switch())
