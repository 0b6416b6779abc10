"""Dashboard URLs: everything under /ui/, and / redirects there.

Paths follow the API's style (no trailing slash) except the home page /ui/ itself.
"""

from django.urls import include, path
from django.views.generic import RedirectView

from dashboard.selectors import has_maintenance
from dashboard.views import (
    alerts,
    apikeys,
    approvals,
    auth,
    playbooks,
    reports,
    routing,
    services,
    slack_links,
)

app_name = "dashboard"

ui = [
    path("", services.ServiceList.as_view(), name="services"),
    path("login", auth.Login.as_view(), name="login"),
    path("logout", auth.Logout.as_view(), name="logout"),
    path("services/new", services.ServiceCreate.as_view(), name="service_new"),
    path("services/<int:pk>", services.ServiceDetail.as_view(), name="service"),
    path("services/<int:pk>/edit", services.ServiceEdit.as_view(), name="service_edit"),
    path("services/<int:pk>/delete", services.ServiceDelete.as_view(), name="service_delete"),
    path("services/<int:pk>/mute", services.ServiceMute.as_view(), name="service_mute"),
    path("services/<int:pk>/unmute", services.ServiceUnmute.as_view(), name="service_unmute"),
    path("services/<int:pk>/run", services.ServiceRunPlaybook.as_view(), name="service_run"),
    path("alerts", alerts.AlertList.as_view(), name="alerts"),
    path("alerts/<int:pk>", alerts.AlertDetail.as_view(), name="alert"),
    path("teams", routing.TeamList.as_view(), name="teams"),
    path("teams/new", routing.TeamEdit.as_view(), name="team_new"),
    path("teams/<int:pk>", routing.TeamEdit.as_view(), name="team"),
    path("teams/<int:pk>/delete", routing.TeamDelete.as_view(), name="team_delete"),
    path("targets", routing.TargetList.as_view(), name="targets"),
    path("targets/new", routing.TargetEdit.as_view(), name="target_new"),
    path("targets/<int:pk>", routing.TargetEdit.as_view(), name="target"),
    path("targets/<int:pk>/delete", routing.TargetDelete.as_view(), name="target_delete"),
    path("rules", routing.RuleList.as_view(), name="rules"),
    path("rules/new", routing.RuleEdit.as_view(), name="rule_new"),
    path("rules/<int:pk>", routing.RuleEdit.as_view(), name="rule"),
    path("rules/<int:pk>/delete", routing.RuleDelete.as_view(), name="rule_delete"),
    path("working-hours", routing.WorkingHoursList.as_view(), name="working_hours"),
    path("working-hours/new", routing.WorkingHoursEdit.as_view(), name="working_hours_new"),
    path("working-hours/<int:pk>", routing.WorkingHoursEdit.as_view(), name="working_hours_edit"),
    path(
        "working-hours/<int:pk>/delete",
        routing.WorkingHoursDelete.as_view(),
        name="working_hours_delete",
    ),
    path("playbooks", playbooks.PlaybookList.as_view(), name="playbooks"),
    path("playbooks/new", playbooks.PlaybookEdit.as_view(), name="playbook_new"),
    path("playbooks/validate", playbooks.PlaybookValidate.as_view(), name="playbook_validate"),
    path("playbooks/<str:name>", playbooks.PlaybookDetail.as_view(), name="playbook"),
    path("playbooks/<str:name>/edit", playbooks.PlaybookEdit.as_view(), name="playbook_edit"),
    path(
        "playbooks/<str:name>/mode",
        playbooks.PlaybookAction.as_view(action="mode"),
        name="playbook_mode",
    ),
    path(
        "playbooks/<str:name>/restore",
        playbooks.PlaybookAction.as_view(action="restore"),
        name="playbook_restore",
    ),
    path(
        "playbooks/<str:name>/reset",
        playbooks.PlaybookAction.as_view(action="reset"),
        name="playbook_reset",
    ),
    path(
        "playbooks/<str:name>/run",
        playbooks.PlaybookAction.as_view(action="run"),
        name="playbook_run",
    ),
    path("executions", playbooks.ExecutionList.as_view(), name="executions"),
    path("executions/<int:pk>", playbooks.ExecutionDetail.as_view(), name="execution"),
    path(
        "executions/<int:pk>/live",
        playbooks.ExecutionDetail.as_view(fragment=True),
        name="execution_live",
    ),
    path(
        "executions/<int:pk>/cancel", playbooks.ExecutionCancel.as_view(), name="execution_cancel"
    ),
    path("approvals", playbooks.ApprovalInbox.as_view(), name="approvals"),
    path("approvals/<int:pk>", approvals.ApprovalDetail.as_view(), name="approval"),
    path("reports/", reports.SuccessReport.as_view(), name="reports"),
    path("slack-users", slack_links.SlackLinkList.as_view(), name="slack_links"),
    path("slack-users/<int:pk>", slack_links.SlackLinkEdit.as_view(), name="slack_link"),
    path("api-keys", apikeys.ApiKeyList.as_view(), name="apikeys"),
    path("api-keys/new", apikeys.ApiKeyCreate.as_view(), name="apikey_new"),
    path("api-keys/<int:pk>/rotate", apikeys.ApiKeyRotate.as_view(), name="apikey_rotate"),
    path("api-keys/<int:pk>/revoke", apikeys.ApiKeyRevoke.as_view(), name="apikey_revoke"),
]

if has_maintenance():
    from dashboard.views import maintenance

    ui += [
        path("maintenance", maintenance.MaintenanceList.as_view(), name="maintenance"),
        path("maintenance/new", maintenance.MaintenanceEdit.as_view(), name="maintenance_new"),
        path(
            "maintenance/<int:pk>/edit",
            maintenance.MaintenanceEdit.as_view(),
            name="maintenance_edit",
        ),
        path(
            "maintenance/<int:pk>/delete",
            maintenance.MaintenanceDelete.as_view(),
            name="maintenance_delete",
        ),
    ]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:services"), name="root"),
    path("ui/", include(ui)),
]
