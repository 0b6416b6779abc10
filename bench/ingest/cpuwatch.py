"""Run a command (the load generator) and account for the CPU time spent while it ran.

    python bench/ingest/cpuwatch.py [--wait-quiet 0.25:120] --tree gunicorn=PID -- wrk ...

The command's own output passes through. At the end one line is printed:

    CPU gunicorn=12.34 postgres=5.67 load=0.89 machine=19.50 others=0.60 capacity=20.00

in CPU seconds: each ``--tree`` is a process and all its descendants (exited children included,
through the kernel's per-parent accounting); ``load`` is the command itself; ``machine`` is all
CPU time used on the machine and ``capacity`` what the machine had (wall time x CPUs), from
/proc/stat. ``others`` is what processes outside the benchmark used meanwhile: on a shared
machine, the figure that says whether a run can be trusted. ``--wait-quiet LIMIT:SECONDS``
first waits (at most SECONDS) until the machine is less than LIMIT busy over two seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, list[str]] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields  # (ppid, fields starting at "state")


def _tree_seconds(root: int) -> float:
    """utime + stime + cutime + cstime of ``root`` and every live descendant."""
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found is not None:
                parents[int(entry)], stats[int(entry)] = found
    total = 0
    for pid, fields in stats.items():
        p = pid
        while p not in (root, 0, 1) and p in parents:
            p = parents[p]
        if p == root:
            total += sum(int(x) for x in fields[11:15])
    return total / TICK


def _machine() -> tuple[float, float]:
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICK, sum(values) / TICK


def _wait_quiet(spec: str) -> None:
    limit, _, patience = spec.partition(":")
    deadline = time.monotonic() + float(patience or 120)
    while True:
        busy0, total0 = _machine()
        time.sleep(2)
        busy1, total1 = _machine()
        share = (busy1 - busy0) / max(total1 - total0, 1e-9)
        if share < float(limit):
            return
        if time.monotonic() > deadline:
            print(f"(machine still {share:.0%} busy; measuring anyway)", file=sys.stderr)
            return


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wait-quiet", metavar="LIMIT:SECONDS")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PID")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    trees = {name: int(pid) for name, _, pid in (t.partition("=") for t in args.tree)}
    if args.wait_quiet:
        _wait_quiet(args.wait_quiet)

    before = {name: _tree_seconds(pid) for name, pid in trees.items()}
    busy0, total0 = _machine()
    code = subprocess.call(command)
    busy1, total1 = _machine()
    after = {name: _tree_seconds(pid) for name, pid in trees.items()}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)

    spent = {name: max(after[name] - before[name], 0.0) for name in trees}
    load = usage.ru_utime + usage.ru_stime
    machine = busy1 - busy0
    others = max(machine - sum(spent.values()) - load, 0.0)
    parts = [f"{name}={value:.2f}" for name, value in spent.items()]
    parts += [
        f"load={load:.2f}",
        f"machine={machine:.2f}",
        f"others={others:.2f}",
        f"capacity={total1 - total0:.2f}",
    ]
    print("CPU " + " ".join(parts))
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
