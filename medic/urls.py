from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from alerting import api as alerting_api
from alerting import config_api
from dashboard import slack as dashboard_slack
from heartbeats import api as heartbeats_api
from heartbeats import jobs_api, maintenance_api
from medic import api as medic_api
from medic import health
from medic.errors import MalformedRequest, MedicError, NotFound, error_response, to_medic_error
from remediation import agent_api
from remediation import api as remediation_api
from remediation.approvals import api as approvals_api
from remediation.audit import api as audit_api
from remediation.playbooks import api as playbooks_api
from remediation.reports import api as reports_api
from remediation.secrets import api as secrets_api

v2 = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api-keys", medic_api.ApiKeyListCreate.as_view()),
    path("api-keys/<int:key_id>/rotate", medic_api.ApiKeyRotate.as_view()),
    path("api-keys/<int:key_id>", medic_api.ApiKeyRevoke.as_view()),
    path("services", heartbeats_api.ServiceListCreate.as_view()),
    path("services/<str:service>", heartbeats_api.ServiceDetail.as_view()),
    path("services/<str:service>/mute", heartbeats_api.ServiceMute.as_view()),
    path("services/<str:service>/unmute", heartbeats_api.ServiceUnmute.as_view()),
    path("services/<str:service>/heartbeats", heartbeats_api.ServiceHeartbeatList.as_view()),
    path("heartbeat/<str:service>", heartbeats_api.HeartbeatCreate.as_view()),
    path("heartbeat/<str:service>/start", jobs_api.JobStart.as_view()),
    path("heartbeat/<str:service>/complete", jobs_api.JobComplete.as_view()),
    path("heartbeat/<str:service>/fail", jobs_api.JobFail.as_view()),
    path("services/<str:service>/runs", jobs_api.ServiceRuns.as_view()),
    path("services/<str:service>/stats", jobs_api.ServiceStats.as_view()),
    path("maintenance-windows", maintenance_api.WindowList.as_view()),
    path("maintenance-windows/<str:ref>", maintenance_api.WindowDetail.as_view()),
    path("heartbeats", heartbeats_api.HeartbeatList.as_view()),
    path("services/<str:service>/route", config_api.ServiceRoute.as_view()),
    path("teams", config_api.TeamList.as_view()),
    path("teams/<str:ref>", config_api.TeamDetail.as_view()),
    path("notification-targets", config_api.TargetList.as_view()),
    path("notification-targets/<str:ref>", config_api.TargetDetail.as_view()),
    path("routing-rules", config_api.RuleList.as_view()),
    path("routing-rules/<str:ref>", config_api.RuleDetail.as_view()),
    path("working-hours", config_api.WorkingHoursList.as_view()),
    path("working-hours/<str:ref>", config_api.WorkingHoursDetail.as_view()),
    path("alerts", alerting_api.AlertList.as_view()),
    path("alerts/<int:alert_id>", alerting_api.AlertDetail.as_view()),
    path("alerts/<int:alert_id>/deliveries", alerting_api.AlertDeliveries.as_view()),
    # remote execution (docs/remote-execution.md): scripts, jobs, agents, the agent protocol
    path("scripts", remediation_api.ScriptList.as_view()),
    path("scripts/<str:name>", remediation_api.ScriptDetail.as_view()),
    path("scripts/<str:name>/versions", remediation_api.ScriptVersions.as_view()),
    path("scripts/<str:name>/run", remediation_api.ScriptRun.as_view()),
    path("jobs", remediation_api.JobList.as_view()),
    path("jobs/<str:job_id>", remediation_api.JobDetail.as_view()),
    path("agents", remediation_api.AgentList.as_view()),
    path("agents/<str:name>", remediation_api.AgentDetail.as_view()),
    # playbooks (docs/playbooks.md): documents, executions, circuit breakers, the stop switch
    path("playbooks", playbooks_api.PlaybookList.as_view()),
    path("playbooks/schema", playbooks_api.PlaybookSchema.as_view()),
    path("playbooks/validate", playbooks_api.PlaybookValidate.as_view()),
    path("playbooks/preview", playbooks_api.PlaybookPreview.as_view()),
    path("playbooks/<str:name>", playbooks_api.PlaybookDetail.as_view()),
    path("playbooks/<str:name>/versions", playbooks_api.PlaybookVersions.as_view()),
    path("playbooks/<str:name>/diff", playbooks_api.PlaybookDiff.as_view()),
    path("playbooks/<str:name>/triggers", playbooks_api.PlaybookTriggers.as_view()),
    path("playbooks/<str:name>/execute", approvals_api.PlaybookExecute.as_view()),
    path("executions", playbooks_api.ExecutionList.as_view()),
    path("executions/<int:execution_id>", playbooks_api.ExecutionDetail.as_view()),
    path("executions/<int:execution_id>/cancel", playbooks_api.ExecutionCancel.as_view()),
    # approvals (docs/approvals.md): decide a parked run, list what waits
    path("executions/<int:execution_id>/approve", approvals_api.ExecutionApprove.as_view()),
    path("executions/<int:execution_id>/decline", approvals_api.ExecutionDecline.as_view()),
    path("approvals", approvals_api.ApprovalList.as_view()),
    path("hooks", approvals_api.HookList.as_view()),
    path("circuit-breakers", playbooks_api.BreakerList.as_view()),
    path("circuit-breakers/<str:scope>/<str:key>/reset", playbooks_api.BreakerReset.as_view()),
    path("remediation", playbooks_api.RemediationStatus.as_view()),
    path("remediation/stop", playbooks_api.RemediationStop.as_view()),
    path("remediation/resume", playbooks_api.RemediationResume.as_view()),
    path("secrets", secrets_api.SecretList.as_view()),
    path("secrets/<str:name>", secrets_api.SecretDetail.as_view()),
    path("audit", audit_api.AuditList.as_view()),
    path("audit/export", audit_api.AuditExport.as_view()),
    # outcomes (docs/outcomes.md); success-metrics is its first name, kept for its clients
    path("reports/outcomes", reports_api.Outcomes.as_view()),
    path("reports/success-metrics", reports_api.SuccessMetrics.as_view()),
    path("agent/register", agent_api.register_view),
    path("agent/jobs", agent_api.jobs_view),
    path("agent/jobs/<str:job_id>/result", agent_api.result_view),
    path("agent/jobs/<str:job_id>/skipped", agent_api.skipped_view),
]

urlpatterns = [
    path("health", health.health),
    path("health/live", health.live),
    path("health/ready", health.ready),
    path("v1/healthcheck/network", health.network),
    path("metrics", health.metrics),
    path("v2/", include(v2)),
    path("admin/", admin.site.urls),
    # Slack interactivity (docs/approvals.md): Approve / Decline buttons, signed by Slack
    path("slack/events", dashboard_slack.slack_events),
    # inbound webhooks (docs/triggers.md): the token and the signature are the credentials
    path("hooks/<str:token>", approvals_api.HookReceive.as_view()),
    path("", include("dashboard.urls")),  # /ui/ and the / redirect to it (docs/dashboard.md)
    path("", include("compat.v1_urls")),
]


def _is_v1(path_: str) -> bool:
    return path_.startswith(("/heartbeat", "/service", "/alerts", "/docs/"))


def handler404(request, exception=None):
    if _is_v1(request.path):
        return JsonResponse({"success": False, "message": "Not found.", "results": ""}, status=404)
    return error_response(NotFound(f"No such endpoint: {request.method} {request.path}"))


def handler400(request, exception=None):
    # Django answers a SuspiciousOperation raised outside a DRF view (a body over
    # DATA_UPLOAD_MAX_MEMORY_SIZE read by middleware or a plain view) through here.
    if request.path.startswith("/v2/") or _is_v1(request.path):
        error = to_medic_error(exception) or MalformedRequest("The request is malformed.")
        if _is_v1(request.path):
            body = {"success": False, "message": error.message, "results": ""}
            return JsonResponse(body, status=error.status)
        return error_response(error)
    return defaults.bad_request(request, exception)


def handler500(request):
    if _is_v1(request.path):
        return JsonResponse(
            {"success": False, "message": "Internal server error.", "results": ""}, status=500
        )
    return error_response(
        MedicError("Internal server error; it has been logged.", code="internal").with_status(500)
    )
