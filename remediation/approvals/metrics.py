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
