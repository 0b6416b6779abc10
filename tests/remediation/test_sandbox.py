"""The local sandbox (SRE-20): each limit bites, and arguments never reach a shell.

Runs real processes. Under root (CI, this machine) scripts switch to MEDIC_SANDBOX_USER
(``nobody``), which RLIMIT_NPROC needs: the kernel counts processes per real user and never
limits root.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import resource
import time
from pathlib import Path

import pytest

from remediation import sandbox
from remediation.jobs import job_run_local
from remediation.models import Job, JobState, JobTarget
from remediation.services import script_create

LIMITS = sandbox.Limits(
    timeout_seconds=20,
    cpu_seconds=10,
    memory_mb=256,
    open_files=64,
    processes=16,
    output_bytes=4096,
)


def run_body(body: str, args: dict | None = None, **limits) -> sandbox.Outcome:
    values = {**LIMITS.__dict__, **limits}
    return sandbox.run(
        command=None,
        body=body,
        sha256=hashlib.sha256(body.encode()).hexdigest(),
        args=args or {},
        limits=sandbox.Limits(**values),
        job_id="test-job",
    )


SANDBOX_USER = os.environ.get("MEDIC_SANDBOX_USER", "nobody")


def sandbox_user_processes() -> int:
    uid = pwd.getpwnam(SANDBOX_USER).pw_uid
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += 1
            except FileNotFoundError:
                pass
    return count


@pytest.fixture(autouse=True)
def _root_and_nobody():
    # The suite runs as root (make test, CI): the sandbox then drops to the sandbox user
    # (nobody by default; one user per xdist worker in the test command).
    assert os.geteuid() == 0, "the sandbox tests need root, to show the switch to the sandbox user"
    pwd.getpwnam(SANDBOX_USER)


def test_runs_as_nobody_in_a_fresh_directory_with_a_cleared_environment(monkeypatch):
    monkeypatch.setenv("MEDIC_SECRET_FROM_WORKER", "leak")
    outcome = run_body("#!/bin/sh\nid -un\npwd\nenv | sort\nls -A\n")
    assert outcome.exit_code == 0, outcome
    lines = outcome.stdout_tail.splitlines()
    assert lines[0] == SANDBOX_USER
    work = lines[1]
    assert work.startswith("/tmp/medic-job-") and work.endswith("/work")
    env = dict(line.split("=", 1) for line in lines[2:] if "=" in line)
    assert set(env) <= {"HOME", "LANG", "MEDIC_JOB_ID", "PATH", "PWD", "TMPDIR"}
    assert env["MEDIC_JOB_ID"] == "test-job" and env["HOME"] == work
    assert "leak" not in outcome.stdout_tail
    assert not Path(work).exists()  # removed afterwards


def test_arguments_are_argv_entries_never_shell_text(tmp_path):
    canary = tmp_path / "canary"
    canary.write_text("intact")
    pwned = tmp_path / "pwned"
    args = {
        "a_semicolon": f"; rm -f {canary}",
        "b_subst": f"$(touch {pwned})",
        "c_backticks": f"`touch {pwned}`",
        "d_flag": True,
        "e_number": 3,
    }
    outcome = run_body('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', args)
    assert outcome.exit_code == 0
    assert outcome.stdout_tail.splitlines() == [
        f"--a_semicolon=; rm -f {canary}",
        f"--b_subst=$(touch {pwned})",
        f"--c_backticks=`touch {pwned}`",
        "--d_flag=true",
        "--e_number=3",
    ]
    assert canary.read_text() == "intact"
    assert not pwned.exists()


def test_a_path_escape_is_passed_literally_and_harmless(tmp_path):
    target = tmp_path / "passwd"
    target.write_text("root:x:0:0\n")
    target.chmod(0o644)
    relative = os.path.relpath(target, "/tmp/medic-job-xxxxxxxx/work")
    script = (
        '#!/bin/sh\nfor a in "$@"; do case "$a" in --path=*) p="${a#--path=}";; esac; done\n'
        'echo "$p"\necho owned >> "$p" || exit 3\n'
    )
    outcome = run_body(script, {"path": relative})
    assert outcome.stdout_tail.strip() == relative
    assert outcome.exit_code == 3  # the sandbox user may not write there
    assert "Permission denied" in outcome.stderr_tail
    assert target.read_text() == "root:x:0:0\n"


def test_a_fork_bomb_is_stopped_by_the_process_limit():
    before = sandbox_user_processes()
    started = time.monotonic()
    outcome = run_body("#!/bin/sh\nbomb() { bomb | bomb & }\nbomb\nsleep 2\n", timeout_seconds=10)
    assert time.monotonic() - started < 15
    assert "Cannot fork" in outcome.stderr_tail
    # nothing survives the job: its whole process group is killed
    assert sandbox_user_processes() <= before


def test_the_process_limit_counts_forks():
    script = (
        "#!/usr/bin/python3\nimport os, time\nn = 0\nfor _ in range(100):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n    n += 1\nprint(n)\n"
    )
    outcome = run_body(script, processes=8)
    assert outcome.exit_code == 0, outcome.stderr_tail
    assert int(outcome.stdout_tail) < 8


def test_a_memory_hog_cannot_allocate():
    outcome = run_body(
        "#!/usr/bin/python3\nx = bytearray(1 << 30)\nprint('allocated')\n", memory_mb=128
    )
    assert outcome.exit_code == 1
    assert "MemoryError" in outcome.stderr_tail
    assert "allocated" not in outcome.stdout_tail


def test_an_infinite_loop_is_killed_at_its_cpu_limit():
    started = time.monotonic()
    outcome = run_body("#!/bin/sh\nwhile :; do :; done\n", cpu_seconds=1, timeout_seconds=30)
    assert outcome.signal in (24, 9)  # SIGXCPU at the soft limit, SIGKILL at the hard one
    assert outcome.timed_out is False
    assert time.monotonic() - started < 25


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_wall_clock_timeout_kills_the_whole_group():
    started = time.monotonic()
    outcome = run_body("#!/bin/sh\nsleep 60 &\necho $!\nsleep 60\n", timeout_seconds=1)
    assert outcome.timed_out is True
    assert outcome.exit_code is None and outcome.signal == 15
    assert time.monotonic() - started < 6
    # The background sleep died with the group (its own pid: other processes of the sandbox
    # user on this machine come and go meanwhile).
    assert not _alive(int(outcome.stdout_tail.split()[0]))


def test_open_files_are_limited():
    outcome = run_body(
        "#!/usr/bin/python3\nimport os\nfds = []\ntry:\n    while True:\n"
        "        fds.append(os.open('/dev/null', os.O_RDONLY))\nexcept OSError as e:\n"
        "    print(len(fds), e.strerror)\n",
        open_files=20,
    )
    count, reason = outcome.stdout_tail.split(" ", 1)
    assert int(count) < 20
    assert "Too many open files" in reason


def test_a_gigabyte_of_output_is_drained_into_a_bounded_tail():
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    outcome = sandbox.run(
        command=["/bin/sh", "-c", "yes medic | head -c 1073741824; echo done >&2"],
        body=None,
        sha256="",
        args={},
        limits=LIMITS,
        job_id="big",
    )
    assert outcome.exit_code == 0, outcome.stderr_tail
    assert len(outcome.stdout_tail.encode()) == LIMITS.output_bytes
    # exactly 1 GiB of "medic\n" ends in "medi" (2**30 = 6 * 178956970 + 4)
    assert outcome.stdout_tail.endswith("medic\nmedi")
    assert outcome.stderr_tail.endswith("done\n")
    assert time.monotonic() - started < 30
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert peak_after - peak_before < 64 * 1024  # KiB: the worker never held the output


def test_a_changed_body_is_refused():
    with pytest.raises(RuntimeError, match="does not hash"):
        sandbox.run(
            command=None,
            body="#!/bin/sh\necho hi\n",
            sha256="0" * 64,
            args={},
            limits=LIMITS,
            job_id="x",
        )


def test_arguments_the_agent_would_refuse_are_refused_here_too():
    for args in ({"bad-name": "x"}, {"a": None}, {"a": [1]}, {"a": "nul\x00"}, {"a": "x" * 5000}):
        with pytest.raises(sandbox.ArgumentError):
            sandbox.args_to_argv(args)


@pytest.mark.django_db
def test_a_local_job_runs_once_and_records_its_result():
    version = script_create(
        name="echo_args",
        actor="t",
        body='#!/bin/sh\necho "$@"\nexit 4\n',
        args_schema={
            "type": "object",
            "properties": {"unit": {"type": "string"}},
            "additionalProperties": False,
        },
        run_local=True,
        timeout_seconds=10,
    )
    job = Job.objects.create(
        script_version=version, target=JobTarget.LOCAL, args={"unit": "nginx; reboot"}
    )
    done = job_run_local(job_id=str(job.pk))
    assert done.state == JobState.FAILED
    assert done.exit_code == 4
    assert done.stdout_tail == "--unit=nginx; reboot\n"
    assert done.duration_ms is not None and done.started_at and done.finished_at
    assert job_run_local(job_id=str(job.pk)) is None  # a redelivered task does nothing
