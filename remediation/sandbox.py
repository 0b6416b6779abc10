"""The local sandbox: run a registered script on the worker host under limits (SRE-20).

- argv only: a registered command or a registered body (``#!`` line), never a shell built from
  input; arguments become ``--name=value`` entries, sorted by name (as medic-agent does);
- a cleared environment plus an allow-list, a fresh private working directory;
- its own session/process group, rlimits (CPU, address space, open files, processes), an
  unprivileged user when the worker runs as root (sandbox_launcher.py applies these);
- a wall-clock timeout that kills the whole process group (SIGTERM, then SIGKILL), and a kill of
  whatever the script left running in its group when it ends;
- stdout and stderr drained on reader threads, keeping only the last ``output_bytes`` of each, so
  a script printing gigabytes costs the worker a bounded amount of memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("sandbox_launcher.py")
TERM_GRACE_SECONDS = 2.0
READER_GRACE_SECONDS = 2.0
MAX_ARGS = 64
MAX_ARG_NAME = 64
MAX_ARG_VALUE = 4096


class ArgumentError(ValueError):
    """Arguments that cannot be turned into argv entries (the agent refuses the same)."""


@dataclass(frozen=True)
class Limits:
    timeout_seconds: int
    cpu_seconds: int
    memory_mb: int
    open_files: int
    processes: int
    output_bytes: int


@dataclass
class Outcome:
    exit_code: int | None
    signal: int | None
    timed_out: bool
    duration_ms: int
    stdout_tail: str
    stderr_tail: str


def valid_arg_name(name: str) -> bool:
    return 0 < len(name) <= MAX_ARG_NAME and all(
        c.isascii() and (c.isalnum() or c == "_") for c in name
    )


def args_to_argv(args: dict) -> list[str]:
    """``{"unit": "nginx", "force": true}`` → ``["--force=true", "--unit=nginx"]``.

    Values must be strings, numbers or booleans, without NUL, at most 4096 bytes: the rules of
    medic-agent (agent-rs/src/registry.rs), so a job that passes here passes there.
    """
    if len(args) > MAX_ARGS:
        raise ArgumentError(f"{len(args)} arguments, at most {MAX_ARGS} allowed")
    argv = []
    for name in sorted(args):
        value = args[name]
        if not valid_arg_name(name):
            raise ArgumentError(
                f"argument name {name!r} must be 1 to {MAX_ARG_NAME} characters from A-Z a-z 0-9 _"
            )
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = json.dumps(value)
        elif isinstance(value, str):
            text = value
        else:
            raise ArgumentError(f"argument {name!r} must be a string, number or boolean")
        if "\x00" in text or len(text.encode()) > MAX_ARG_VALUE:
            raise ArgumentError(
                f"argument {name!r} must be at most {MAX_ARG_VALUE} bytes without NUL"
            )
        argv.append(f"--{name}={text}")
    return argv


class _Tail:
    """The last ``cap`` bytes of a stream; trimmed in amortised O(1) per byte."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.buf = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.buf += chunk
        if len(self.buf) > 2 * self.cap:
            del self.buf[: len(self.buf) - self.cap]

    def text(self) -> str:
        data = bytes(self.buf[-self.cap :]) if self.cap else b""
        # NUL cannot be stored in PostgreSQL text; a cut multi-byte sequence becomes U+FFFD.
        return data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _drain(stream, tail: _Tail) -> None:
    fd = stream.fileno()
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            tail.add(chunk)
    except OSError:
        return


_warned_not_root = False


def _sandbox_user() -> tuple[int, int] | None:
    """(uid, gid) to run as, or None when the worker is not root and cannot switch."""
    global _warned_not_root
    if os.geteuid() != 0:
        if not _warned_not_root:
            _warned_not_root = True
            logger.warning(
                "sandbox: the worker is not root, so scripts run as its own user; the process "
                "limit then counts the worker's own processes (docs/remote-execution.md)"
            )
        return None
    name = settings.MEDIC_SANDBOX_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError as exc:
        raise RuntimeError(
            f"MEDIC_SANDBOX_USER={name!r} does not exist; scripts are never run as root"
        ) from exc
    if entry.pw_uid == 0:
        raise RuntimeError("MEDIC_SANDBOX_USER must not be root")
    return entry.pw_uid, entry.pw_gid


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_group_gone(pgid: int, limit: float = 2.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.01)


def _environment(work: Path, job_id: str) -> dict[str, str]:
    env = {
        name: os.environ[name]
        for name in settings.MEDIC_SANDBOX_ENV_ALLOWLIST
        if name in os.environ
    }
    env.update(
        PATH=settings.MEDIC_SANDBOX_PATH,
        LANG=env.get("LANG", "C.UTF-8"),
        HOME=str(work),
        TMPDIR=str(work),
        MEDIC_JOB_ID=job_id,
    )
    return env


def run(
    *,
    command: list[str] | None,
    body: str | None,
    sha256: str,
    args: dict,
    limits: Limits,
    job_id: str,
) -> Outcome:
    """Run one script to completion, timeout or limit. Never raises for the script's own
    failures (they are in the outcome); raises for a sandbox that cannot be set up."""
    argv_args = args_to_argv(args)
    user = _sandbox_user()
    base = settings.MEDIC_SANDBOX_WORK_DIR or None
    root = Path(tempfile.mkdtemp(prefix="medic-job-", dir=base))
    try:
        # The job directory is root's; only work/ belongs to the sandbox user, and the script
        # body lies read-only in bin/, so a script cannot rewrite itself or its siblings.
        root.chmod(0o711)
        work = root / "work"
        work.mkdir(mode=0o700)
        if user is not None:
            os.chown(work, *user)
        if body:
            data = body.encode()
            if hashlib.sha256(data).hexdigest() != sha256:
                raise RuntimeError("the script body does not hash to its registered sha256")
            (root / "bin").mkdir(mode=0o755)
            program = root / "bin" / "script"
            program.write_bytes(data)
            program.chmod(0o555)
            argv = [str(program), *argv_args]
        else:
            argv = [*command, *argv_args]
        spec = {
            "uid": user[0] if user else None,
            "gid": user[1] if user else None,
            "cpu_seconds": limits.cpu_seconds,
            "memory_mb": limits.memory_mb,
            "open_files": limits.open_files,
            "processes": limits.processes,
        }
        return _execute(
            [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(spec), "--", *argv],
            cwd=work,
            env=_environment(work, job_id),
            limits=limits,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _execute(argv: list[str], *, cwd: Path, env: dict[str, str], limits: Limits) -> Outcome:
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: one killpg reaches every descendant
        close_fds=True,
    )
    tails = (_Tail(limits.output_bytes), _Tail(limits.output_bytes))
    readers = [
        threading.Thread(target=_drain, args=(stream, tail), daemon=True, name="sandbox-reader")
        for stream, tail in zip((proc.stdout, proc.stderr), tails, strict=True)
    ]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        proc.wait(timeout=limits.timeout_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=TERM_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
    # Whatever the script started in its group (background jobs) ends with it, and is gone
    # before the next job starts: half-dead processes would still count against its
    # RLIMIT_NPROC (the count is per user, shared by every sandboxed job).
    _kill_group(proc.pid, signal.SIGKILL)
    _wait_group_gone(proc.pid)
    duration_ms = int((time.monotonic() - started) * 1000)
    for reader, stream in zip(readers, (proc.stdout, proc.stderr), strict=True):
        reader.join(READER_GRACE_SECONDS)
        if reader.is_alive():
            # A descendant that left the process group (setsid) still holds the pipe; the
            # daemon reader ends when it does. The tails so far are what we report.
            logger.warning("sandbox: output still open after the script ended")
        else:
            stream.close()
    code = proc.returncode
    return Outcome(
        exit_code=code if code >= 0 else None,
        signal=-code if code < 0 else None,
        timed_out=timed_out,
        duration_ms=duration_ms,
        stdout_tail=tails[0].text(),
        stderr_tail=tails[1].text(),
    )
