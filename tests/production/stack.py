"""The docker-compose stack without a container engine, for the production smoke test.

- ``runtime_venv()``: a virtualenv holding exactly what the Dockerfile installs, by running the
  Dockerfile's own ``pip install`` line (only the cache flag differs, so that a second run
  installs from a wheel cache); kept under ``.cache/production/`` and keyed by that line and
  ``requirements.lock``.
- ``compose_config()``: docker-compose.yml as docker-compose resolves it (``docker-compose
  config``: anchors merged, ``.env`` read into each service's environment), with an ``.env`` made
  from ``.env.example``.
- ``Localizer``: what a container's network namespace and mounts do, done by rewriting strings:
  service names and container ports (``postgres:5432``, ``127.0.0.1:8000``, ``--port 8001``) become
  the test's loopback ports, ``/run/secrets/`` and mounted folders become test folders. Nothing
  else in a command or an environment is changed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from tests.e2e.conftest import Proc as BaseProc

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "production"
MEDIC_SERVICES = ("migrate", "web", "agent-gateway", "mcp", "worker", "beat")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the image's dependencies -----------------------------------------------------------------
def dockerfile_pip_lines() -> list[str]:
    """Every ``RUN pip install ...`` of the Dockerfile (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [ln.strip()[4:] for ln in text.splitlines() if ln.strip().startswith("RUN pip install")]
    assert lines, "the Dockerfile has no `RUN pip install` line"
    return lines


def runtime_venv() -> Path:
    """A virtualenv with the image's Python dependencies and nothing else."""
    lines = dockerfile_pip_lines()
    digest = hashlib.sha256()
    for part in [*lines, (ROOT / "requirements.lock").read_text(), sys.version]:
        digest.update(part.encode())
    venv = CACHE / f"venv-{digest.hexdigest()[:16]}"
    if (venv / ".complete").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for line in lines:
        args = shlex.split(line)
        assert args[:2] == ["pip", "install"], line
        args = [a for a in args[2:] if a != "--no-cache-dir"]
        done = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--cache-dir", str(CACHE / "pip"), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
    (venv / ".complete").touch()
    for old in CACHE.glob("venv-*"):
        if old != venv:
            shutil.rmtree(old, ignore_errors=True)
    return venv


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


# --- the compose file -----------------------------------------------------------------------
def compose_config(project: Path) -> dict:
    """docker-compose.yml resolved by docker-compose itself, with .env from .env.example."""
    shutil.copy(ROOT / ".env.example", project / ".env")
    out = subprocess.run(
        [
            "docker-compose",
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--project-directory",
            str(project),
            "config",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return yaml.safe_load(out)


class Localizer:
    """Rewrites container addresses and paths into the test's."""

    def __init__(self, project: Path, ports: dict[str, int], folders: dict[str, Path]) -> None:
        # ports: compose address ("postgres:5432", "web:8000", ...) -> loopback port
        self.project = project
        self.pairs: list[tuple[str, str]] = []
        for address, port in ports.items():
            service, container_port = address.split(":")
            local = f"127.0.0.1:{port}"
            self.pairs.append((address, local))
            # inside the service's own container
            self.pairs.append((f"127.0.0.1:{container_port}#{service}", local))
            self.pairs.append((f"0.0.0.0:{container_port}#{service}", local))
        self.ports = ports
        self.folders = folders  # container folder -> local folder

    def text(self, value: str, service: str = "") -> str:
        for container, local in self.folders.items():
            value = value.replace(container, str(local))
        for old, new in self.pairs:
            if "#" in old:
                address, owner = old.split("#")
                if owner == service:
                    value = value.replace(address, new)
            else:
                value = value.replace(old, new)
        return value

    def port(self, service: str, container_port: str) -> str:
        return str(self.ports[f"{service}:{container_port}"])

    def command(self, args: list[str], service: str) -> list[str]:
        out = []
        for i, arg in enumerate(args):
            if arg == "0.0.0.0":
                arg = "127.0.0.1"
            elif i and args[i - 1] == "--port":
                arg = self.port(service, arg)
            out.append(self.text(arg, service))
        return out


# --- processes --------------------------------------------------------------------------------
class Proc(BaseProc):
    """A process with a name (for failure reports)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        super().__init__(args, env, log)

    def alive(self) -> bool:
        return self.popen.poll() is None


def wait_for(predicate, timeout: float, what: str, procs=()):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        dead = [p for p in procs if not p.alive()]
        if dead or time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name} ---\n{p.output()[-4000:]}" for p in procs)
            reason = f"{', '.join(p.name for p in dead)} exited" if dead else "timed out"
            raise AssertionError(f"{reason} waiting for {what}\n{logs}")
        time.sleep(0.25)


def http_status(url: str, **kwargs) -> int:
    try:
        return urllib.request.urlopen(url, timeout=5, **kwargs).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def render_template(text: str, env: dict[str, str]) -> str:
    """What the nginx image's envsubst step does: ${NAME} and $NAME of defined variables only."""
    pattern = re.compile(r"\$\{(\w+)\}|\$(\w+)")

    def sub(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return env[name] if name in env else match.group(0)

    return pattern.sub(sub, text)
