"""The success metrics as plain text (``manage.py success_report``)."""

from __future__ import annotations

ENDING_LABELS = {
    "own": "recovered on its own",
    "playbook": "by a playbook",
    "approved": "by an approved playbook",
    "human": "by a person, no playbook",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f} %"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "no data"}[met]


def _stats_line(label: str, stats: dict | None) -> str:
    if not stats:
        return f"  {label:<28} no resolved alerts"
    return (
        f"  {label:<28} n={stats['count']:<5} mean={_duration(stats['mean']):<7} "
        f"p50={_duration(stats['p50']):<7} p90={_duration(stats['p90']):<7} "
        f"p99={_duration(stats['p99'])}"
    )


def render(report: dict) -> str:
    mttr, cov, acc, sec = report["mttr"], report["coverage"], report["accuracy"], report["security"]
    team = f" (team {report['team']})" if report["team"] else ""
    lines = [
        f"Success metrics {report['since']:%Y-%m-%d %H:%M} to "
        f"{report['until']:%Y-%m-%d %H:%M} UTC{team}",
        "",
    ]
    lines.append("MTTR (alert opened -> resolved)")
    lines.append(_stats_line("all alerts", mttr["overall"]))
    for ending, label in ENDING_LABELS.items():
        lines.append(_stats_line(label, mttr["by_ending"].get(ending)))
    for team_name, stats in mttr["by_team"].items():
        lines.append(_stats_line(f"team {team_name}", stats))
    for priority, stats in mttr["by_priority"].items():
        lines.append(_stats_line(f"priority {priority}", stats))
    lines.append(_stats_line("services with a playbook", mttr["covered_services"]))
    baseline = mttr["baseline"]
    if baseline is None:
        lines.append("  no active playbook yet: no before/after comparison")
    else:
        lines.append(_stats_line("same services, before", baseline["covered_services"]))
    target = mttr["target"]
    lines.append(
        f"  target: 30 % lower with playbooks; observed {_pct(target['reduction_observed'])}: "
        f"{_verdict(target['met'])}"
    )
    lines += ["", "Remediation coverage"]
    lines.append(
        f"  alerts with a playbook: {cov['alerts_covered']}/{cov['alerts']} "
        f"({_pct(cov['alert_share'])}); services: {cov['services_covered']}/{cov['services']}; "
        f"target 50 %: {_verdict(cov['target']['met'])}"
    )
    for team_name, row in cov["by_team"].items():
        lines.append(
            f"  team {team_name}: alerts {_pct(row['alert_share'])}, "
            f"services {row['services_covered']}/{row['services']}"
        )
    lines.append("  playbooks that never fired: " + (", ".join(cov["never_fired"]) or "none"))
    for row in cov["top_uncovered"]:
        lines.append(f"  no playbook: {row['service']} ({row['alerts']} alerts)")
    lines += ["", "Alert accuracy"]
    lines.append(
        f"  {acc['resolved_within_interval_unaided']} of {acc['alerts']} alerts resolved on their "
        f"own within one interval: {_pct(acc['false_positive_rate'])} (target < 5 %: "
        f"{_verdict(acc['target']['met'])})"
    )
    lines.append(f"  opened during maintenance (held back): {acc['suppressed_by_maintenance']}")
    lines.append(
        f"  repeats (within an hour of the service's previous alert): {acc['repeat_alerts']}; "
        f"flapping: {', '.join(acc['flapping_services']) or 'none'}"
    )
    tally = sec.get("period")
    scope = tally["scope"] if tally else sec["scope"]
    counts = tally or {k: sec[k] for k in ("refused_total", "refused_by_reason")}
    lines += ["", f"Security ({scope})"]
    lines.append(f"  requests refused: {counts['refused_total']}")
    for reason, count in counts["refused_by_reason"].items():
        lines.append(f"    {reason}: {count:.0f}")
    ag = report["agents"]
    lines += ["", "Agent memory"]
    lines.append(
        f"  {ag['reporting']} of {ag['agents']} agents report; over "
        f"{ag['threshold_bytes'] / 1e6:g} MB: {len(ag['over_threshold'])} "
        f"(target: {_verdict(ag['target']['met'])})"
    )
    for row in ag["over_threshold"]:
        lines.append(
            f"    {row['name']} {row['agent_version'] or '-'}: "
            f"{row['memory_rss_bytes'] / 1e6:.1f} MB"
        )
    return "\n".join(lines) + "\n"
