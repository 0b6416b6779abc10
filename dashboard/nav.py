"""The dashboard's navigation, in one list.

Each entry names the least role that sees it and the URL prefixes that mark it current. Later
sections (playbooks, approvals) add one entry here and their own urls/views.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from dashboard.roles import Role


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    role: Role
    prefixes: tuple[str, ...]


NAV: list[NavItem] = [
    NavItem("Services", "dashboard:services", Role.VIEWER, ("/ui/services",)),
    NavItem("Alerts", "dashboard:alerts", Role.VIEWER, ("/ui/alerts",)),
    NavItem(
        "Routing",
        "dashboard:teams",
        Role.VIEWER,
        ("/ui/teams", "/ui/targets", "/ui/rules", "/ui/working-hours"),
    ),
    # Listed once heartbeats has maintenance windows (dashboard.urls adds the page then).
    NavItem("Maintenance", "dashboard:maintenance", Role.VIEWER, ("/ui/maintenance",)),
    NavItem("Playbooks", "dashboard:playbooks", Role.VIEWER, ("/ui/playbooks",)),
    NavItem("Executions", "dashboard:executions", Role.VIEWER, ("/ui/executions",)),
    NavItem("Approvals", "dashboard:approvals", Role.VIEWER, ("/ui/approvals",)),
    NavItem("Reports", "dashboard:reports", Role.VIEWER, ("/ui/reports",)),
    NavItem("API keys", "dashboard:apikeys", Role.ADMIN, ("/ui/api-keys",)),
    NavItem("Slack users", "dashboard:slack_links", Role.ADMIN, ("/ui/slack-users",)),
]


def nav_for(path: str, role: Role | None) -> list[dict]:
    items = []
    for item in NAV:
        if role is None or role < item.role:
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        current = path.startswith(item.prefixes) or (
            item.url_name == "dashboard:services" and path == url
        )
        items.append({"label": item.label, "url": url, "current": current})
    return items
