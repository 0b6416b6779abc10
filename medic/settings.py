"""Medic settings, read from the environment and nowhere else.

Every knob is documented in docs/configuration.md. Secrets accept a ``<NAME>_FILE`` variant that
names a file holding the value (Docker/Kubernetes secrets), which wins over the plain variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VERSION = "2.0.0"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from exc


# --- Mode -------------------------------------------------------------------------------------
# The embedded mode is what `make run` starts: SQLite, no Redis, a filesystem Celery broker, and
# a development secret. Anything else is production and must be configured explicitly.
EMBEDDED = env_bool("MEDIC_EMBEDDED", False)
DEBUG = env_bool("DEBUG", False)
_DEV_SECRET = "medic-embedded-development-secret-do-not-use-in-production"
VAR_DIR = Path(env_str("MEDIC_VAR_DIR", str(BASE_DIR / "var")))


def embedded_secret(path: Path) -> str:
    """The embedded mode's SECRET_KEY: random, made on the first start, kept in var/ (mode 0600)
    like the database. Stored secrets are encrypted with a key derived from it (medic/crypto.py),
    so a copy of the database alone opens nothing."""
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(draft, path)  # atomic: the first process to start wins, the others read it
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY", "")
if EMBEDDED and not SECRET_KEY:
    SECRET_KEY = embedded_secret(VAR_DIR / "secret_key")

if not EMBEDDED:
    if DEBUG:
        raise ImproperlyConfigured(
            "DEBUG is on outside the embedded mode. Unset DEBUG (or set MEDIC_EMBEDDED=1 for a "
            "local trial)."
        )
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "SECRET_KEY (or SECRET_KEY_FILE) must be set to a random value of at least 32 "
            "characters, e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`."
        )

ALLOWED_HOSTS = [
    h.strip()
    for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if EMBEDDED else "").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Public base URL, used for links in notifications (dashboard, alert pages).
MEDIC_BASE_URL = env_str("MEDIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Applications -----------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "medic",
    "medic.events",
    "heartbeats",
    "alerting",
    "remediation",
    "remediation.playbooks",
    "remediation.approvals",
    "remediation.secrets",
    "remediation.audit",
    "dashboard",
    "compat",
]

MIDDLEWARE = [
    # Probes (/health/live, /health/ready, /metrics) answered before host validation, so that
    # health checks and scrapers can address a process by its own address (medic/probes.py).
    "medic.probes.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "medic.csp.ContentSecurityPolicyMiddleware",
    # Static assets (admin, Swagger UI, dashboard) are served from memory by WhiteNoise, so no
    # URL pattern and no reverse proxy is needed for them.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "medic.auth.RateLimitHeadersMiddleware",
    "medic.text.UnstorableQueryMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "medic.urls"
WSGI_APPLICATION = "medic.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context_processors.dashboard",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
_default_db = ""
if EMBEDDED:
    (VAR_DIR / "broker" / "queue").mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "broker" / "processed").mkdir(parents=True, exist_ok=True)
    _default_db = f"sqlite:///{VAR_DIR / 'medic.sqlite3'}"
_database_url = env_str("DATABASE_URL", _default_db)
if not _database_url:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set, e.g. postgresql://medic:PASSWORD@db:5432/medic "
        "(or set MEDIC_EMBEDDED=1 for the SQLite trial mode)."
    )
# Persistent connections keep the heartbeat path free of connection set-up. Health checks are on:
# a kept connection that the server dropped (restart, failover) is replaced before a request uses
# it instead of failing that request with a 500. On PostgreSQL the check asks the socket, not the
# server (medic/db/postgresql/base.py): no round trip per request.
DATABASES = {
    "default": dj_database_url.parse(
        _database_url,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600),
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
# The password apart from the URL, so that it can come from a file (DATABASE_PASSWORD_FILE, a
# compose secret); it replaces the URL's password.
if _database_password := env_str("DATABASE_PASSWORD", ""):
    DATABASES["default"]["PASSWORD"] = _database_password
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "medic.db.postgresql"
# 1 behind a pooler in transaction mode (PgBouncer pool_mode=transaction, docs/scaling.md): each
# transaction may run on another server connection, so a server-side cursor (QuerySet.iterator,
# the audit export) declared outside a transaction would be gone at its next fetch. Everything
# else Medic does is transaction-scoped already (no session advisory locks or LISTEN; psycopg
# binds parameters client-side, and the heartbeat group commit prepares its statement only
# when this is 0).
DATABASE_TRANSACTION_POOLING = env_bool("DATABASE_TRANSACTION_POOLING", False)
if DATABASE_TRANSACTION_POOLING:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
# 1: check kept connections with Django's "SELECT 1" round trip instead of the socket check.
DATABASE_CONN_HEALTH_CHECK_QUERY = env_bool("DATABASE_CONN_HEALTH_CHECK_QUERY", False)
# 0: every request goes through Django's full request handling (see heartbeats/ingest.py).
MEDIC_HEARTBEAT_ROUTE = env_bool("MEDIC_HEARTBEAT_ROUTE", True)
# Group commit of hot-path heartbeats (heartbeats/groupcommit.py; PostgreSQL only): each web
# process commits the beats waiting at one moment, up to MEDIC_INGEST_BATCH_MAX, in one
# transaction, and answers each after that commit. 0: one transaction per heartbeat.
MEDIC_INGEST_GROUP_COMMIT = env_bool("MEDIC_INGEST_GROUP_COMMIT", True)
MEDIC_INGEST_BATCH_MAX = max(1, env_int("MEDIC_INGEST_BATCH_MAX", 128))
# Threads per web process that answer heartbeat batches (medic/front.py): with two, one batch is
# prepared while the other waits for its commit (docs/performance.md, "Levers").
MEDIC_INGEST_THREADS = max(1, env_int("MEDIC_INGEST_THREADS", 2))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery ---------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "medic",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Metrics observed in worker processes (the sweep, deliveries) are served here; see
# docs/operations.md "Metrics".
MEDIC_WORKER_METRICS_ADDR = env_str("MEDIC_WORKER_METRICS_ADDR", "127.0.0.1:9809")
MEDIC_WORKER_METRICS_REQUIRE_KEY = env_bool("MEDIC_WORKER_METRICS_REQUIRE_KEY", not EMBEDDED)

# --- Medic behaviour --------------------------------------------------------------------------
MEDIC_SWEEP_BATCH_SIZE = env_int("MEDIC_SWEEP_BATCH_SIZE", 200)
MEDIC_HEARTBEAT_RETENTION_DAYS = env_int("MEDIC_HEARTBEAT_RETENTION_DAYS", 30)
# Domain events (the outbox between heartbeats, alerting and remediation) older than this are
# deleted by the hourly medic.events.prune task.
MEDIC_EVENT_RETENTION_DAYS = env_int("MEDIC_EVENT_RETENTION_DAYS", 30)
# The rolling window of the medic_success_* gauges (docs/outcomes.md); keep it within
# MEDIC_EVENT_RETENTION_DAYS (alerts resolved by a person are recognised from their events).
MEDIC_SUCCESS_METRICS_WINDOW_DAYS = env_int("MEDIC_SUCCESS_METRICS_WINDOW_DAYS", 7)
MEDIC_DEFAULT_MUTE_HOURS = env_float("MEDIC_DEFAULT_MUTE_HOURS", 24.0)
# Re-notify an open alert every N minutes; 0 means "every alert_interval of the service".
MEDIC_RENOTIFY_MINUTES = env_float("MEDIC_RENOTIFY_MINUTES", 0.0)
MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = env_bool("MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS", False)
# How long a verified API key is trusted before its row is re-read (revocation delay bound).
MEDIC_API_KEY_RECHECK_SECONDS = env_float("MEDIC_API_KEY_RECHECK_SECONDS", 2.0)
# Keys imported from Medic v1 carry no look-up prefix: a v1-shaped key not yet seen is tried
# against at most this many imported v1 hashes (manage.py import_v1 imports no more).
MEDIC_V1_API_KEY_CANDIDATES = env_int("MEDIC_V1_API_KEY_CANDIDATES", 10)

# --- Notifications ----------------------------------------------------------------------------
SLACK_BOT_TOKEN = env_str("SLACK_BOT_TOKEN", "")
SLACK_API_BASE_URL = env_str("SLACK_API_BASE_URL", "https://slack.com/api").rstrip("/")
SLACK_DEFAULT_CHANNEL = env_str("SLACK_DEFAULT_CHANNEL", "")
# Verifies Slack's interactivity requests (approval buttons) at /slack/events; empty refuses all.
SLACK_SIGNING_SECRET = env_str("SLACK_SIGNING_SECRET", "")
PAGERDUTY_ROUTING_KEY = env_str("PAGERDUTY_ROUTING_KEY", "")
PAGERDUTY_EVENTS_URL = env_str("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com").rstrip("/")
MEDIC_NOTIFY_TIMEOUT_SECONDS = env_float("MEDIC_NOTIFY_TIMEOUT_SECONDS", 10.0)
# Retry schedule for failed notification attempts (seconds after the previous attempt).
# A delivery whose next attempt is this late (its Celery message was lost: worker killed, broker
# flushed) is re-enqueued by the sweep.
MEDIC_DELIVERY_RECOVERY_SECONDS = env_int("MEDIC_DELIVERY_RECOVERY_SECONDS", 30)
# Base delays of the retries after a transient failure; each is stretched by a random 0-50 %
# (jitter) so that deliveries that failed together do not come back together. docs/alert-routing.md
MEDIC_DELIVERY_RETRY_DELAYS = [
    int(x)
    for x in env_str("MEDIC_DELIVERY_RETRY_DELAYS", "10,30,90,300,900").split(",")
    if x.strip()
]
# Rate-limit answers (429, Slack "ratelimited") are retried after their Retry-After without using
# a step of the schedule, until the delivery is this old.
MEDIC_DELIVERY_GIVE_UP_SECONDS = env_int("MEDIC_DELIVERY_GIVE_UP_SECONDS", 3600)
# Receivers' replies are read while streaming up to this many bytes (Slack echoes the message).
MEDIC_NOTIFY_MAX_REPLY_BYTES = env_int("MEDIC_NOTIFY_MAX_REPLY_BYTES", 256 * 1024)
# Sending pace per destination, shared by every worker (Redis when configured, else the
# database): Slack allows about one message per second per channel, PagerDuty's Events API a
# limited number of events per minute per routing key.
MEDIC_SLACK_PACE_PER_SECOND = env_float("MEDIC_SLACK_PACE_PER_SECOND", 0.9)
MEDIC_SLACK_PACE_BURST = env_int("MEDIC_SLACK_PACE_BURST", 1)
MEDIC_PAGERDUTY_PACE_PER_MINUTE = env_float("MEDIC_PAGERDUTY_PACE_PER_MINUTE", 100.0)
MEDIC_PAGERDUTY_PACE_BURST = env_int("MEDIC_PAGERDUTY_PACE_BURST", 10)
MEDIC_DELIVERY_PACE_REDIS_URL = env_str("MEDIC_DELIVERY_PACE_REDIS_URL", REDIS_URL)
# After a webhook signing secret is changed, bodies are signed with the old one too for this long.
MEDIC_WEBHOOK_SECRET_ROTATION_HOURS = env_float("MEDIC_WEBHOOK_SECRET_ROTATION_HOURS", 24.0)

# Rate limits: requests in any 60-second window (0 disables a class). Per-key overrides:
# ApiKey.rate_limits. Counters live in Redis, or without it in a SQLite file shared by every
# process on the host (the embedded mode), never in process memory.
MEDIC_RATE_LIMIT_HEARTBEAT = env_int("MEDIC_RATE_LIMIT_HEARTBEAT", 100)
MEDIC_RATE_LIMIT_MANAGEMENT = env_int("MEDIC_RATE_LIMIT_MANAGEMENT", 20)
MEDIC_RATE_LIMIT_UNAUTHENTICATED = env_int("MEDIC_RATE_LIMIT_UNAUTHENTICATED", 30)
MEDIC_RATE_LIMIT_ANONYMOUS = env_int("MEDIC_RATE_LIMIT_ANONYMOUS", 100)
MEDIC_RATE_LIMIT_REDIS_URL = env_str("MEDIC_RATE_LIMIT_REDIS_URL", REDIS_URL)
MEDIC_RATE_LIMIT_FILE = env_str("MEDIC_RATE_LIMIT_FILE", str(VAR_DIR / "ratelimit.sqlite3"))
# The web front (medic/front.py; production and `make run`): threads per web process that run
# complete requests other than heartbeats, and how long a request body may take to arrive (then
# 408). In production deploy/gunicorn.conf.py sets the threads from GUNICORN_THREADS (8).
MEDIC_FRONT_THREADS = env_int("MEDIC_FRONT_THREADS", 4)
MEDIC_FRONT_BODY_SECONDS = env_float("MEDIC_FRONT_BODY_SECONDS", 30.0)
# Sign-in lockout (portal and Django admin): failed sign-ins counted per username and per client
# address (medic.ratelimit, GCRA); at a limit, sign-in is refused (429) for
# MEDIC_LOGIN_FAILURE_WINDOW_MINUTES, and each failure weighs that long after the one before it.
# 0 disables a limit.
MEDIC_LOGIN_MAX_FAILURES_PER_USER = env_int("MEDIC_LOGIN_MAX_FAILURES_PER_USER", 5)
MEDIC_LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("MEDIC_LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
MEDIC_LOGIN_FAILURE_WINDOW_MINUTES = env_int("MEDIC_LOGIN_FAILURE_WINDOW_MINUTES", 15)
# How many reverse proxies in front of Medic append to X-Forwarded-For (0: use the peer address).
# docker-compose.yml sets 1: its TLS front (deploy/nginx/) is the one hop.
MEDIC_TRUSTED_PROXY_HOPS = env_int("MEDIC_TRUSTED_PROXY_HOPS", 0)

# AES-256-GCM keys for secrets at rest (webhook headers, signing secrets, routing keys). Required
# outside the embedded mode: a key derived from SECRET_KEY would make every stored secret
# unreadable the day SECRET_KEY is rotated or lost.
MEDIC_ENCRYPTION_KEYS = env_str("MEDIC_ENCRYPTION_KEYS", "")
if not EMBEDDED and not MEDIC_ENCRYPTION_KEYS.strip():
    raise ImproperlyConfigured(
        "MEDIC_ENCRYPTION_KEYS (or MEDIC_ENCRYPTION_KEYS_FILE) must be set outside the embedded "
        "mode: 'id:base64key', e.g. \"k1:$(python3 -c 'import os,base64; "
        "print(base64.b64encode(os.urandom(32)).decode())')\". Keep it with your backups."
    )

# --- Remote execution (docs/remote-execution.md) ---------------------------------------------
# Agents: long-poll wait handed out at registration, and the longest wait a poll may ask for.
MEDIC_AGENT_POLL_WAIT_SECONDS = env_int("MEDIC_AGENT_POLL_WAIT_SECONDS", 30)
MEDIC_AGENT_POLL_MAX_WAIT_SECONDS = env_int("MEDIC_AGENT_POLL_MAX_WAIT_SECONDS", 60)
# Waiting polls are woken through Redis pub/sub; this database re-check is only the safety net
# (and, without Redis, the delivery delay).
MEDIC_AGENT_WAKEUP_REDIS_URL = env_str("MEDIC_AGENT_WAKEUP_REDIS_URL", REDIS_URL)
MEDIC_AGENT_POLL_RECHECK_SECONDS = env_float(
    "MEDIC_AGENT_POLL_RECHECK_SECONDS", 10.0 if MEDIC_AGENT_WAKEUP_REDIS_URL else 2.0
)
# Each agent is monitored as the service ``agent-<name>``: a poll records at most one heartbeat
# per MEDIC_AGENT_HEARTBEAT_SECONDS; the service goes down after MEDIC_AGENT_OFFLINE_AFTER_MINUTES.
MEDIC_AGENT_HEARTBEAT_SECONDS = env_int("MEDIC_AGENT_HEARTBEAT_SECONDS", 60)
# The PRD's promise: an agent stays under 5 MB resident (MB = 10^6 bytes). Agents above it are
# listed on the Outcomes page and counted in medic_agents_over_memory_threshold.
MEDIC_AGENT_MEMORY_THRESHOLD_BYTES = env_int("MEDIC_AGENT_MEMORY_THRESHOLD_BYTES", 5_000_000)
MEDIC_AGENT_OFFLINE_AFTER_MINUTES = env_float("MEDIC_AGENT_OFFLINE_AFTER_MINUTES", 3.0)
MEDIC_AGENT_SERVICE_TEAM = env_str("MEDIC_AGENT_SERVICE_TEAM", "site-reliability")
MEDIC_AGENT_SERVICE_PRIORITY = env_str("MEDIC_AGENT_SERVICE_PRIORITY", "p3")
MEDIC_AGENT_RATE_LIMIT = env_int("MEDIC_AGENT_RATE_LIMIT", 120)
MEDIC_AGENT_SKIP_ALERT_DEDUP_MINUTES = env_float("MEDIC_AGENT_SKIP_ALERT_DEDUP_MINUTES", 60.0)
MEDIC_AGENT_JOB_QUEUE_TTL_SECONDS = env_int("MEDIC_AGENT_JOB_QUEUE_TTL_SECONDS", 3600)
MEDIC_AGENT_RESULT_GRACE_SECONDS = env_int("MEDIC_AGENT_RESULT_GRACE_SECONDS", 120)

# Playbooks (docs/playbooks.md). The one switch that stops all remediation has two halves:
# this setting (off: nothing runs, whatever the database says) and POST /v2/remediation/stop.
MEDIC_REMEDIATION_ENABLED = env_bool("MEDIC_REMEDIATION_ENABLED", True)
# Executions running or waiting at once, over all playbooks; beyond it triggers are recorded
# (decision global_limit) and the next event for the service tries again.
MEDIC_REMEDIATION_MAX_RUNNING = env_int("MEDIC_REMEDIATION_MAX_RUNNING", 200)
# Circuit breaker: automatic runs per playbook and per service within the window.
MEDIC_PLAYBOOK_BREAKER_MAX_RUNS = env_int("MEDIC_PLAYBOOK_BREAKER_MAX_RUNS", 3)
MEDIC_PLAYBOOK_BREAKER_WINDOW_MINUTES = env_float("MEDIC_PLAYBOOK_BREAKER_WINDOW_MINUTES", 60.0)
# A claimed step is recovered by the sweep after its timeout plus this margin (a dead worker).
MEDIC_PLAYBOOK_LEASE_MARGIN_SECONDS = env_int("MEDIC_PLAYBOOK_LEASE_MARGIN_SECONDS", 30)
# Claims of one step beyond its attempts before it is failed (a worker that keeps dying on it).
MEDIC_PLAYBOOK_MAX_RESUMES = env_int("MEDIC_PLAYBOOK_MAX_RESUMES", 3)
MEDIC_PLAYBOOK_POLL_SECONDS = env_int("MEDIC_PLAYBOOK_POLL_SECONDS", 3)
MEDIC_PLAYBOOK_SWEEP_SECONDS = env_int("MEDIC_PLAYBOOK_SWEEP_SECONDS", 5)
MEDIC_PLAYBOOK_SWEEP_GRACE_SECONDS = env_int("MEDIC_PLAYBOOK_SWEEP_GRACE_SECONDS", 5)
MEDIC_PLAYBOOK_CAPTURE_BYTES = env_int("MEDIC_PLAYBOOK_CAPTURE_BYTES", 4096)
# Automatic demotion to approval: required.
MEDIC_PLAYBOOK_DEMOTION_THRESHOLD = env_float("MEDIC_PLAYBOOK_DEMOTION_THRESHOLD", 0.5)
MEDIC_PLAYBOOK_DEMOTION_MIN_RUNS = env_int("MEDIC_PLAYBOOK_DEMOTION_MIN_RUNS", 5)
MEDIC_PLAYBOOK_DEMOTION_WINDOW_RUNS = env_int("MEDIC_PLAYBOOK_DEMOTION_WINDOW_RUNS", 10)
# How long an `approval: required` request waits for a decision before the execution times out
# and its alert escalates (a duration: 30m, 24h, 2d).
MEDIC_APPROVAL_EXPIRY = env_str("MEDIC_APPROVAL_EXPIRY", "24h")
# The local sandbox (scripts run by the Celery worker).
MEDIC_SANDBOX_USER = env_str("MEDIC_SANDBOX_USER", "nobody")
MEDIC_SANDBOX_WORK_DIR = env_str("MEDIC_SANDBOX_WORK_DIR", "")
MEDIC_SANDBOX_PATH = env_str("MEDIC_SANDBOX_PATH", "/usr/local/bin:/usr/bin:/bin")
MEDIC_SANDBOX_ENV_ALLOWLIST = [
    n.strip() for n in env_str("MEDIC_SANDBOX_ENV_ALLOWLIST", "").split(",") if n.strip()
]

# Remediation audit log (docs/audit.md): rows older than this are purged hourly (0 keeps all).
MEDIC_AUDIT_RETENTION_DAYS = env_int("MEDIC_AUDIT_RETENTION_DAYS", 90)
# Per-day agent memory (the outcomes report's history, docs/outcomes.md): days older than this
# are forgotten by the playbooks sweep (0 keeps all). Above the report's longest period, 366 days.
MEDIC_AGENT_MEMORY_RETENTION_DAYS = env_int("MEDIC_AGENT_MEMORY_RETENTION_DAYS", 400)

# --- Auth, DRF, OpenAPI -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Every sign-in (the dashboard's, the Django admin's) goes through the lock-out (medic/lockout.py).
AUTHENTICATION_BACKENDS = ["medic.lockout.LockoutBackend"]
# The dashboard (docs/dashboard.md) signs people in; the Django admin keeps its own login page.
LOGIN_URL = "/ui/login"
LOGIN_REDIRECT_URL = "/ui/"
LOGOUT_REDIRECT_URL = "/ui/login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["medic.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["medic.auth.ScopePermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSON parser; fields refuse values of another JSON type (medic/strict.py).
    "DEFAULT_PARSER_CLASSES": ["medic.strict.JSONBodyParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "medic.pagination.CursorPage",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "medic.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Medic API",
    "DESCRIPTION": "Heartbeat monitoring with alert routing. Authenticate with "
    "`Authorization: Bearer mdk_...`.",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/v2",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "alerting.models.Channel",
        "RunStatusEnum": "heartbeats.models.RunStatus",
        "DeliveryStatusEnum": "alerting.models.DeliveryStatus",
        "SkipReasonEnum": "remediation.models.SkipReason",
        "ExecutionStateEnum": "remediation.playbooks.models.ExecutionState",
        "StepStateEnum": "remediation.playbooks.models.StepState",
        "PlaybookModeEnum": "remediation.playbooks.models.Mode",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "medic.schema.postprocess",
    ],
    "SERVE_PERMISSIONS": ["medic.auth.ScopePermission"],
    "SERVE_AUTHENTICATION": [
        "rest_framework.authentication.SessionAuthentication",
        "medic.auth.ApiKeyAuthentication",
    ],
}

# --- I18N, static -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = EMBEDDED
if EMBEDDED:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# --- Security headers -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTTPS only: once every client reaches Medic over TLS, tell browsers to insist on it
# (docs/security.md). 0 (the default) sends no Strict-Transport-Security header.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SESSION_COOKIE_SAMESITE = "Lax"

# --- Logging ----------------------------------------------------------------------------------
MEDIC_LOG_FORMAT = env_str("MEDIC_LOG_FORMAT", "text")
if MEDIC_LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured("MEDIC_LOG_FORMAT must be 'text' or 'json'")
MEDIC_LOG_LEVEL = env_str("MEDIC_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "medic.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": MEDIC_LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": MEDIC_LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": "INFO"},
    },
}
