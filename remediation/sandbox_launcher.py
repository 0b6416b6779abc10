"""Last step before a sandboxed script runs: drop privileges, set rlimits, exec.

Run by remediation.sandbox as ``python -I -S sandbox_launcher.py SPEC -- PROGRAM ARGS...`` in a
fresh process (its own session, cleared environment, the job's working directory). Doing this
here rather than in a ``preexec_fn`` matters: the Celery worker is multi-threaded, and Python
code between fork and exec in a threaded parent can deadlock on a lock another thread held at
fork time. This process is single-threaded and ends in ``execve``, so the script inherits exactly
what is set here. Standard library only (it runs with ``-S``: no site-packages).
"""

import json
import os
import resource
import sys


def _lower(limit: int, value: int, hard_extra: int = 0) -> None:
    # Never above the current hard limit (an unprivileged process could not raise it anyway).
    _, hard = resource.getrlimit(limit)
    soft_new = value if hard == resource.RLIM_INFINITY else min(value, hard)
    hard_new = soft_new + hard_extra
    if hard != resource.RLIM_INFINITY:
        hard_new = min(hard_new, hard)
    resource.setrlimit(limit, (soft_new, hard_new))


def main() -> None:
    spec = json.loads(sys.argv[1])
    if sys.argv[2] != "--" or len(sys.argv) < 4:
        sys.stderr.write("medic-sandbox: usage: SPEC -- PROGRAM [ARGS...]\n")
        os._exit(126)
    argv = sys.argv[3:]
    if spec.get("uid") is not None:
        # Supplementary groups first, then the group, then the user: after setuid nothing can
        # be changed back.
        os.setgroups([])
        os.setgid(spec["gid"])
        os.setuid(spec["uid"])
    os.umask(0o077)
    # RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL at the hard limit two seconds later.
    _lower(resource.RLIMIT_CPU, spec["cpu_seconds"], hard_extra=2)
    _lower(resource.RLIMIT_AS, spec["memory_mb"] * 1024 * 1024)
    _lower(resource.RLIMIT_NOFILE, spec["open_files"])
    # Counted per real user by the kernel: it bites for the unprivileged user, never for root.
    _lower(resource.RLIMIT_NPROC, spec["processes"])
    _lower(resource.RLIMIT_CORE, 0)
    try:
        os.execve(argv[0], argv, os.environ)  # noqa: S606 (a registered program, no shell)
    except OSError as exc:
        sys.stderr.write(f"medic-sandbox: cannot execute {argv[0]}: {exc.strerror}\n")
        sys.stderr.flush()
        os._exit(127 if isinstance(exc, FileNotFoundError) else 126)


if __name__ == "__main__":
    main()
