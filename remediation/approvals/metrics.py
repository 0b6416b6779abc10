from prometheus_client import Counter, Histogram

DECISIONS = Counter(
    "medic_approval_decisions_total",
    "Approval requests decided, by channel (slack, portal, api, mcp, system) and decision "
    "(approved, declined, expired, cancelled).",
    ["channel", "decision"],
)
REQUESTS = Counter("medic_approval_requests_total", "Approval requests opened.", ["mode"])
TIME_TO_DECISION = Histogram(
    "medic_approval_decision_seconds",
    "From request to decision.",
    ["decision"],
    buckets=(30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600),
)
REFUSED = Counter(
    "medic_approval_refused_total",
    "Decisions refused (four_eyes, already_decided, not_pending).",
    ["why"],
)
SLACK_RETRIES = Counter(
    "medic_approval_slack_retries_total",
    "Approval messages whose post to Slack is retried later, by Slack error (ratelimited, "
    "service_unavailable, fatal_error, internal_error, request_timeout, http_5xx, "
    "connection_error).",
    ["error"],
)
SLACK_FAILURES = Counter(
    "medic_approval_slack_failures_total",
    "Approval messages never posted to Slack, by error (a permanent one such as "
    "channel_not_found or invalid_auth, or a retryable one after the last attempt).",
    ["error"],
)
SLACK_UPDATE_FAILURES = Counter(
    "medic_approval_slack_update_failures_total",
    "Updates of approval messages in Slack (decided, expired, cancelled) that never reached it, "
    "by error (a permanent one such as message_not_found, or a retryable one after the last "
    "attempt); the decision itself stands.",
    ["error"],
)
