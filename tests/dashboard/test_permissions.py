"""Every dashboard view against every persona: anonymous people are sent to the login page,
users below a view's role get 403 (for a forged POST too, with nothing changed), and the rest
get the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from heartbeats.maintenance import window_create
from heartbeats.models import MaintenanceWindow, Service
from medic.models import ApiKey
from remediation.playbooks import engine
from remediation.playbooks import services as playbook_services
from tests.dashboard.conftest import logged_in, make_user
from tests.playbooks.conftest import playbook_yaml

pytestmark = pytest.mark.django_db

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
RANK = {None: 0, "norole": 0, VIEWER: 1, OPERATOR: 2, ADMIN: 3, "superuser": 3}

# path -> (least role for GET, least role for POST); None for GET: POST-only (GET answers 405).
PAGES = {
    "/ui/": (VIEWER, OPERATOR),
    "/ui/services/new": (OPERATOR, OPERATOR),
    "/ui/services/{service}": (VIEWER, OPERATOR),
    "/ui/services/{service}/edit": (OPERATOR, OPERATOR),
    "/ui/services/{service}/delete": (OPERATOR, OPERATOR),
    "/ui/services/{service}/mute": (None, OPERATOR),
    "/ui/services/{service}/unmute": (None, OPERATOR),
    "/ui/services/{service}/run": (None, OPERATOR),
    "/ui/alerts": (VIEWER, OPERATOR),
    "/ui/alerts/{alert}": (VIEWER, OPERATOR),
    "/ui/reports/": (VIEWER, OPERATOR),
    "/ui/teams": (VIEWER, OPERATOR),
    "/ui/teams/new": (OPERATOR, OPERATOR),
    "/ui/teams/{team}": (OPERATOR, OPERATOR),
    "/ui/teams/{team}/delete": (OPERATOR, OPERATOR),
    "/ui/targets": (VIEWER, ADMIN),
    "/ui/targets/new": (ADMIN, ADMIN),
    "/ui/targets/{target}": (ADMIN, ADMIN),
    "/ui/targets/{target}/delete": (ADMIN, ADMIN),
    "/ui/rules": (VIEWER, OPERATOR),
    "/ui/rules/new": (OPERATOR, OPERATOR),
    "/ui/rules/{rule}": (OPERATOR, OPERATOR),
    "/ui/rules/{rule}/delete": (OPERATOR, OPERATOR),
    "/ui/working-hours": (VIEWER, OPERATOR),
    "/ui/working-hours/new": (OPERATOR, OPERATOR),
    "/ui/working-hours/{schedule}": (OPERATOR, OPERATOR),
    "/ui/working-hours/{schedule}/delete": (OPERATOR, OPERATOR),
    "/ui/maintenance": (VIEWER, OPERATOR),
    "/ui/maintenance/new": (OPERATOR, OPERATOR),
    "/ui/maintenance/{window}/edit": (OPERATOR, OPERATOR),
    "/ui/maintenance/{window}/delete": (OPERATOR, OPERATOR),
    "/ui/api-keys": (ADMIN, ADMIN),
    "/ui/api-keys/new": (ADMIN, ADMIN),
    "/ui/api-keys/{key}/rotate": (None, ADMIN),
    "/ui/api-keys/{key}/revoke": (None, ADMIN),
    "/ui/playbooks": (VIEWER, OPERATOR),
    "/ui/playbooks/new": (OPERATOR, OPERATOR),
    "/ui/playbooks/validate": (None, OPERATOR),
    "/ui/playbooks/{playbook}": (VIEWER, OPERATOR),
    "/ui/playbooks/{playbook}/edit": (OPERATOR, OPERATOR),
    "/ui/playbooks/{playbook}/mode": (None, OPERATOR),
    "/ui/playbooks/{playbook}/restore": (None, OPERATOR),
    "/ui/playbooks/{playbook}/reset": (None, OPERATOR),
    "/ui/playbooks/{playbook}/run": (None, OPERATOR),
    "/ui/executions": (VIEWER, OPERATOR),
    "/ui/executions/{execution}": (VIEWER, OPERATOR),
    "/ui/executions/{execution}/live": (VIEWER, OPERATOR),
    "/ui/executions/{execution}/cancel": (None, OPERATOR),
    "/ui/approvals": (VIEWER, OPERATOR),
    "/ui/approvals/{execution}": (VIEWER, OPERATOR),
    "/ui/slack-users": (ADMIN, ADMIN),
    "/ui/slack-users/{user}": (ADMIN, ADMIN),
}
PUBLIC = {"/ui/login", "/ui/logout"}
PERSONAS = [None, "norole", VIEWER, OPERATOR, ADMIN, "superuser"]


@pytest.fixture
def world(world):
    """The shared world and a maintenance window (far away, so it holds nothing back)."""
    world["window"] = window_create(
        actor="tests",
        name="far-future",
        starts_at=datetime(2099, 1, 1, tzinfo=UTC),
        ends_at=datetime(2099, 1, 1, 1, tzinfo=UTC),
        scope="team",
        team="payments",
    )
    world["playbook"] = playbook_services.playbook_save(
        document=playbook_yaml(
            "restart-billing", "http://127.0.0.1:9", pattern="billing-*"
        ).replace("steps:", "approval: required\nsteps:", 1),
        actor="tests",
    ).playbook
    world["execution"] = engine.execution_create(
        playbook=world["playbook"],
        service=world["service"],
        alert_id=None,
        trigger={},
        automatic=False,
        actor="tests",
    )
    world["user"] = make_user("sam")
    return world


def _client(persona: str | None) -> Client:
    if persona is None:
        return Client()
    if persona == "superuser":
        return logged_in(make_user("root", superuser=True))
    if persona == "norole":
        return logged_in(make_user("nobody"))
    return logged_in(make_user(persona, persona))


def _dashboard_paths() -> set[str]:
    found = set()

    def walk(resolver, prefix=""):
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                walk(entry, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern) and (prefix + str(entry.pattern)).startswith("ui/"):
                found.add("/" + prefix + str(entry.pattern))

    walk(get_resolver())
    return found


def test_the_matrix_covers_every_dashboard_url():
    patterns = {re.sub(r"<[^>]+>", "{}", p) for p in _dashboard_paths()}
    covered = {p.format(**dict.fromkeys(_IDS, "{}")) for p in PAGES} | PUBLIC
    assert patterns == covered


_IDS = (
    "service",
    "alert",
    "team",
    "target",
    "rule",
    "schedule",
    "key",
    "window",
    "playbook",
    "execution",
    "user",
)


def _path(template: str, world) -> str:
    return template.format(**{k: world[k].name if k == "playbook" else world[k].pk for k in _IDS})


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("template", sorted(PAGES))
def test_get(template, persona, world):
    path = _path(template, world)
    response = _client(persona).get(path)
    get_role, post_role = PAGES[template]
    if persona is None:
        assert response.status_code == 302
        assert response["Location"] == f"/ui/login?next={path}"
    elif RANK[persona] < RANK[get_role or post_role]:
        assert response.status_code == 403
        assert b"can't do this here" in response.content
    elif get_role is None:
        assert response.status_code == 405
    else:
        assert response.status_code == 200, response.content[:500]


BELOW = [
    (template, persona)
    for template, (_, post_role) in sorted(PAGES.items())
    for persona in PERSONAS
    if RANK[persona] < RANK[post_role]
]


@pytest.mark.parametrize(("template", "persona"), BELOW)
def test_forged_post_below_the_role_changes_nothing(template, persona, world):
    path = _path(template, world)
    before = (
        Service.objects.count(),
        ApiKey.objects.filter(revoked_at=None).count(),
        MaintenanceWindow.objects.count(),
    )
    response = _client(persona).post(
        path, {"reason": "forged", "duration": "1h", "name": "x", "scopes": ["admin"]}
    )
    if persona is None:
        assert response.status_code == 302
        assert response["Location"].startswith("/ui/login?next=")
    else:
        assert response.status_code == 403
    assert (
        Service.objects.count(),
        ApiKey.objects.filter(revoked_at=None).count(),
        MaintenanceWindow.objects.count(),
    ) == before
    world["service"].refresh_from_db()
    assert not world["service"].muted


def _write_controls(html: str) -> list[str]:
    """Forms that change something (sign-out aside) and links to forms."""
    posts = re.findall(r'<form method="post" action="([^"]*)"', html)
    links = re.findall(
        r'href="(/ui/[^"]*(?:/new|/edit|/delete|/teams/\d+|/rules/\d+|'
        r'/working-hours/\d+|/targets/\d+)[^"]*)"',
        html,
    )
    return [p for p in posts if p != "/ui/logout"] + links


def test_viewer_sees_no_write_controls(viewer, world):
    pages = [
        "/ui/",
        f"/ui/services/{world['service'].pk}",
        f"/ui/services/{world['quiet'].pk}",
        "/ui/alerts",
        f"/ui/alerts/{world['alert'].pk}",
        "/ui/teams",
        "/ui/targets",
        "/ui/rules",
        "/ui/working-hours",
        "/ui/maintenance",
    ]
    for path in pages:
        html = viewer.get(path).content.decode()
        assert _write_controls(html) == [], path
        assert "/ui/api-keys" not in html  # the navigation hides admin pages too


def test_operator_and_admin_see_their_controls(operator, admin_user, world):
    detail = f"/ui/services/{world['service'].pk}"
    controls = _write_controls(operator.get(detail).content.decode())
    assert f"{detail}/mute" in controls and f"{detail}/edit" in controls
    assert "/ui/api-keys" not in operator.get("/ui/").content.decode()
    assert _write_controls(operator.get("/ui/targets").content.decode()) == []
    assert "/ui/targets/new" in _write_controls(admin_user.get("/ui/targets").content.decode())
    maintenance = _write_controls(operator.get("/ui/maintenance").content.decode())
    assert "/ui/maintenance/new" in maintenance
    assert f"/ui/maintenance/{world['window'].pk}/delete" in maintenance
    assert "/ui/api-keys" in admin_user.get("/ui/").content.decode()


def test_login_page_and_sign_out(world):
    client = Client()
    assert client.get("/ui/login").status_code == 200
    make_user("vera", "viewer")
    response = client.post("/ui/login", {"username": "vera", "password": "wrong"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    response = client.post(
        "/ui/login?next=/ui/alerts",
        {"username": "vera", "password": "correct horse battery staple", "next": "/ui/alerts"},
    )
    assert response.status_code == 302 and response["Location"] == "/ui/alerts"
    assert client.get("/ui/alerts").status_code == 200
    assert client.get("/ui/logout").status_code == 405  # signing out is a POST (CSRF-protected)
    response = client.post("/ui/logout")
    assert response.status_code == 302 and response["Location"] == "/ui/login"
    assert client.get("/ui/alerts").status_code == 302


def test_csrf_is_enforced(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("otto", "operator"))
    response = client.post(f"/ui/services/{world['service'].pk}/mute", {"reason": "x"})
    assert response.status_code == 403
    world["service"].refresh_from_db()
    assert not world["service"].muted


def test_root_redirects_to_the_dashboard(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/ui/"


def test_a_user_without_a_role_sees_no_figures(norole, world):
    html = norole.get("/ui/").content.decode()
    assert "no Medic role yet" in html
    assert 'data-testid="down-count"' not in html and 'href="/ui/alerts"' not in html
