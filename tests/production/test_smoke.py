"""Production smoke test: docker-compose.yml's processes, run from the image's dependencies.

No container engine is needed. The Medic processes (migrate, web, agent-gateway, mcp, worker, beat)
run with the commands and environment docker-compose resolves from docker-compose.yml and
.env.example, from a virtualenv made by the Dockerfile's own ``pip install`` (runtime
dependencies only), against a fresh PostgreSQL cluster (password authentication, the password
read from the compose secret file) and Redis, behind nginx running the shipped
deploy/nginx/medic.conf.template with a throwaway certificate. The test is then an outside
client: compose's health checks, an API key made as docs/deployment.md says, a service, a
heartbeat and a missed deadline through the proxy, the alert at a webhook receiver, an agent long
poll answered by the gateway, and Prometheus (Debian's) scraping every process with the shipped
deploy/prometheus/prometheus.yml. See docs/deployment.md, "What CI proves".
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.production.stack import (
    MEDIC_SERVICES,
    ROOT,
    Localizer,
    Proc,
    compose_config,
    free_port,
    http_status,
    render_template,
    runtime_venv,
    site_packages,
    wait_for,
)
from tests.receivers import Receiver
from tests.remediation.processes import make_tls

pytestmark = [pytest.mark.production, pytest.mark.timeout(600)]

HOST = "medic.example.com"  # .env.example's ALLOWED_HOSTS: the client sends it, probes do not
TOOLS = ("docker-compose", "nginx", "prometheus", "promtool", "redis-server", "pg_dump")


def pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert found, "PostgreSQL server binaries are missing (scripts/test.sh installs them)"
    return found[-1].parent


def as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done


class Cluster:
    """A fresh PostgreSQL cluster whose superuser ``medic`` signs in with a password over TCP."""

    def __init__(self, work: Path, password_file: Path, name: str) -> None:
        self.bin, self.dir, self.port = pg_bindir(), work / name, free_port()
        self.run = work / f"{name}-run"
        for folder in (self.dir, self.run):
            folder.mkdir(mode=0o700)
            if os.geteuid() == 0:
                shutil.chown(folder, "postgres", "postgres")
        pwfile = work / f"{name}-pw"
        pwfile.write_text(password_file.read_text())
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres")
        as_postgres(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.dir),
                "-U",
                "medic",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            ]
        )
        as_postgres(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.dir),
                "-l",
                str(self.run / "log"),
                "-w",
                "start",
                "-o",
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.run} -c fsync=off",
            ]
        )
        self.env = {**os.environ, "PGPASSWORD": password_file.read_text().strip()}
        self.tool("createdb", "medic")

    def tool(self, name: str, *args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(self.bin / name), "-h", "127.0.0.1", "-p", str(self.port), "-U", "medic", *args],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        assert done.returncode == 0, f"{name}: {done.stderr.decode()}"
        return done

    def stop(self) -> None:
        as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "immediate", "stop"])


class Stack:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: dict[str, Proc] = {}
        self.cleanups: list = []

    def env(self, service: str) -> dict[str, str]:
        env = {
            k: self.loc.text(str(v), service)
            for k, v in self.services[service]["environment"].items()
        }
        env.update(
            PATH=f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            HOME=str(self.work / "home"),
            HOSTNAME=socket.gethostname(),
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            LANG="C.UTF-8",
        )
        return env

    def resolve(self, args: list[str], env: dict[str, str]) -> list[str]:
        exe = shutil.which(args[0], path=env["PATH"])
        assert exe, f"{args[0]} is not installed in the image's environment"
        return [exe, *args[1:]]

    def start(self, service: str) -> Proc:
        env = self.env(service)
        args = self.resolve(self.loc.command(self.services[service]["command"], service), env)
        proc = Proc(service, args, env, self.work / f"{service}.log")
        self.procs[service] = proc
        return proc

    def healthcheck(self, service: str) -> subprocess.CompletedProcess:
        test = self.services[service]["healthcheck"]["test"]
        env = self.env(service) if service in MEDIC_SERVICES else {**os.environ}
        kind, args = test[0], self.loc.command(test[1:], service)
        if kind == "CMD-SHELL":
            args = ["sh", "-c", args[0]]
        else:
            assert kind == "CMD", test
            args = self.resolve(args, env)
        return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    def manage(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """``docker compose exec web python manage.py ...``"""
        env = env or self.env("web")
        return subprocess.run(
            self.resolve(["python", "manage.py", *args], env),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    # --- the outside client, through the proxy ---
    def request(self, method: str, path: str, body=None, key: str | None = None, timeout=10):
        headers = {"Host": HOST, "Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.tls) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None


def _require_tools() -> None:
    missing = [t for t in TOOLS if not shutil.which(t)]
    assert not missing, f"missing {missing}: scripts/test.sh installs them (apt, as root)"


@pytest.fixture(scope="module")
def venv() -> Path:
    return runtime_venv()


@pytest.fixture(scope="module")
def stack(venv):
    _require_tools()
    # PostgreSQL runs as the postgres user when the tests run as root: a folder it can reach.
    work = Path(
        tempfile.mkdtemp(prefix="medic-production-", dir=os.environ.get("MEDIC_TEST_WORKDIR"))
    )
    work.chmod(0o755)
    s = Stack(work)
    s.venv = venv
    try:
        _start(s)
        yield s
    finally:
        # SIGTERM to all at once (each stops gracefully in parallel), then wait for each.
        for proc in s.procs.values():
            if proc.alive():
                os.killpg(proc.popen.pid, signal.SIGTERM)
        for proc in reversed(list(s.procs.values())):
            proc.stop()
        for cleanup in reversed(s.cleanups):
            cleanup()
        shutil.rmtree(work, ignore_errors=True)


def _start(s: Stack) -> None:
    work = s.work
    (work / "home").mkdir()
    project = work / "project"
    project.mkdir()
    config = compose_config(project)
    s.services = config["services"]

    # Compose secrets: the files docs/deployment.md tells operators to create.
    secrets = work / "secrets"
    secrets.mkdir()
    (secrets / "secret_key").write_text(base64.urlsafe_b64encode(os.urandom(36)).decode() + "\n")
    (secrets / "postgres_password").write_text(base64.b16encode(os.urandom(12)).decode() + "\n")
    s.key_b64 = base64.b64encode(os.urandom(32)).decode()
    (secrets / "encryption_keys").write_text(f"k1:{s.key_b64}\n")
    for secret in secrets.iterdir():
        secret.chmod(0o400)  # docs/deployment.md: readable by Medic's user only
    assert set(config["secrets"]) == {"secret_key", "postgres_password", "encryption_keys"}

    s.pg = Cluster(work, secrets / "postgres_password", "pg")
    s.cleanups.append(s.pg.stop)
    redis_port = free_port()
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--pidfile",
            str(work / "redis.pid"),
            "--logfile",
            str(work / "redis.log"),
        ],
        check=True,
    )
    s.cleanups.append(lambda: os.kill(int((work / "redis.pid").read_text()), 15))

    tls = work / "tls"
    tls.mkdir()
    ca, cert, key = make_tls(tls)
    shutil.copy(cert, tls / "fullchain.pem")
    shutil.copy(key, tls / "privkey.pem")
    s.tls = ssl.create_default_context(cafile=str(ca))

    ports = {
        "postgres:5432": s.pg.port,
        "redis:6379": redis_port,
        "web:8000": free_port(),
        "agent-gateway:8001": free_port(),
        "mcp:8002": free_port(),
        "worker:9809": free_port(),
        "proxy:443": free_port(),
        "proxy:80": free_port(),
    }
    # The proxy's mounts: the template from the repository, ./tls from the test.
    folders = {"/run/secrets": secrets}
    for volume in s.services["proxy"]["volumes"]:
        source, target = volume.split(":")[:2]
        relative = Path(source).relative_to(project)
        folders[target] = tls if relative == Path("tls") else ROOT / relative
    s.loc = Localizer(project, ports, folders)
    s.url = f"https://127.0.0.1:{ports['proxy:443']}"

    migrate = s.start("migrate")
    wait_for(lambda: migrate.popen.poll() is not None, 120, "migrate", [])
    assert migrate.popen.returncode == 0, migrate.output()

    for service in ("web", "agent-gateway", "mcp", "worker", "beat"):
        s.start(service)
    _start_proxy(s)
    medic = [s.procs[n] for n in ("web", "agent-gateway", "mcp", "worker", "beat", "proxy")]
    wait_for(
        lambda: http_status(s.url + "/health/live", context=s.tls) == 200,
        60,
        "the proxy and web",
        medic,
    )
    wait_for(lambda: s.healthcheck("agent-gateway").returncode == 0, 60, "the gateway", medic)
    wait_for(lambda: s.healthcheck("mcp").returncode == 0, 60, "the MCP server", medic)

    # docs/deployment.md: the first key, as `docker compose exec web python manage.py ...`
    # (both at once: each is a Python start-up)
    made = {}
    makers = [
        threading.Thread(
            target=lambda n=name, sc=scopes: made.update(
                {n: s.manage("create_api_key", "--name", n, "--scopes", sc)}
            )
        )
        for name, scopes in (("ops-admin", "admin"), ("prometheus", "read"))
    ]
    for thread in makers:
        thread.start()
    for thread in makers:
        thread.join()
    for done in made.values():
        assert done.returncode == 0, done.stderr
    s.admin_key = made["ops-admin"].stdout.strip().splitlines()[-1]
    s.read_key = made["prometheus"].stdout.strip().splitlines()[-1]
    s.medic = medic


def _start_proxy(s: Stack) -> None:
    proxy = s.services["proxy"]
    env = {k: s.loc.text(str(v), "proxy") for k, v in proxy["environment"].items()}
    env["MEDIC_PROXY_HTTPS_PORT"] = s.loc.port("proxy", env["MEDIC_PROXY_HTTPS_PORT"])
    env["MEDIC_PROXY_HTTP_PORT"] = s.loc.port("proxy", env["MEDIC_PROXY_HTTP_PORT"])
    template = next(
        Path(s.loc.text(v.split(":")[1], "proxy"))
        for v in proxy["volumes"]
        if v.split(":")[1].endswith(".template")
    )
    nginx = s.work / "nginx"
    for sub in ("", "tmp"):
        (nginx / sub).mkdir(exist_ok=True, mode=0o777)
    (nginx / "medic.conf").write_text(render_template(template.read_text(), env))
    # The image's own nginx.conf, reduced to what the test host needs around the server blocks.
    (nginx / "nginx.conf").write_text(
        f"""daemon off;
worker_processes 1;
pid {nginx}/nginx.pid;
error_log stderr info;
events {{ worker_connections 512; }}
http {{
    access_log {nginx}/access.log;
    client_body_temp_path {nginx}/tmp/body;
    proxy_temp_path {nginx}/tmp/proxy;
    fastcgi_temp_path {nginx}/tmp/fastcgi;
    uwsgi_temp_path {nginx}/tmp/uwsgi;
    scgi_temp_path {nginx}/tmp/scgi;
    include {nginx}/medic.conf;
}}
"""
    )
    check = subprocess.run(
        ["nginx", "-t", "-p", str(nginx), "-c", str(nginx / "nginx.conf"), "-e", "stderr"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    s.procs["proxy"] = Proc(
        "proxy",
        ["nginx", "-p", str(nginx), "-c", str(nginx / "nginx.conf"), "-e", "stderr"],
        dict(os.environ),
        s.work / "proxy.log",
    )


# --- the tests ----------------------------------------------------------------------------------
def test_every_compose_health_check_passes(stack):
    services = [n for n, svc in stack.services.items() if svc.get("healthcheck")]
    assert {"web", "agent-gateway", "mcp", "worker", "beat", "proxy"} <= set(services)
    for name in services:
        if name in ("postgres", "redis"):
            continue  # the images' own tools; the test runs its own servers
        # A health check gets start_period and retries; beat's needs the first sweep pass.
        wait_for(
            lambda n=name: stack.healthcheck(n).returncode == 0,
            90,
            f"the {name} health check",
            stack.medic,
        )


def test_probe_paths_need_no_public_host_name_and_others_do(stack):
    web = f"http://127.0.0.1:{stack.loc.port('web', '8000')}"
    assert http_status(web + "/health/ready") == 200  # Host: 127.0.0.1, not in ALLOWED_HOSTS
    assert http_status(web + "/health") == 400  # DisallowedHost: validation still applies
    status, _ = stack.request("GET", "/health")
    assert status == 200


def test_proxy_redirects_plain_http_and_keeps_metrics_internal(stack):
    plain = f"http://127.0.0.1:{stack.loc.port('proxy', '80')}/ui/"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(urllib.request.Request(plain, headers={"Host": HOST}), timeout=5)
    assert redirect.value.code == 301
    assert redirect.value.headers["Location"] == f"https://{HOST}/ui/"
    status, body = stack.request("GET", "/metrics", key=stack.read_key)
    assert status == 404 and body["error"]["code"] == "not_found"


def test_missed_heartbeat_alerts_a_webhook_through_the_proxy(stack):
    with Receiver() as receiver:
        status, body = stack.request(
            "POST",
            "/v2/notification-targets",
            {
                "name": "ops-webhook",
                "kind": "webhook",
                "url": receiver.url + "/medic",
                "secret_headers": {"Authorization": "Bearer receiver-token"},
            },
            key=stack.admin_key,
        )
        assert status == 201, body
        status, body = stack.request(
            "POST",
            "/v2/routing-rules",
            {"name": "everything", "position": 10, "targets": ["ops-webhook"]},
            key=stack.admin_key,
        )
        assert status == 201, body
        status, body = stack.request(
            "POST",
            "/v2/services",
            {"heartbeat_name": "nightly-backup", "alert_interval": 0.1},
            key=stack.admin_key,
        )
        assert status == 201, body
        status, body = stack.request(
            "POST", "/v2/heartbeat/nightly-backup", {"status": "UP"}, key=stack.admin_key
        )
        assert status in (200, 201, 202), body

        wait_for(lambda: receiver.requests, 60, "the alert at the webhook receiver", stack.medic)
        delivered = receiver.requests[0]
        assert delivered.headers["X-Medic-Event"] == "trigger"
        # the header was stored encrypted under the key from the compose secret file
        assert delivered.headers["Authorization"] == "Bearer receiver-token"
        assert "nightly-backup" in delivered.body.decode()
        status, body = stack.request("GET", "/v2/alerts?state=open", key=stack.admin_key)
        assert status == 200 and body["results"][0]["heartbeat_name"] == "nightly-backup", body


def test_agent_long_poll_is_answered_by_the_gateway_through_the_proxy(stack):
    status, body = stack.request(
        "POST", "/v2/agents", {"name": "db-1", "labels": ["role:db"]}, key=stack.admin_key
    )
    assert status == 201, body
    agent_key = body["key"]
    status, body = stack.request(
        "POST",
        "/v2/agent/register",
        {
            "hostname": "db-1",
            "os": "linux",
            "arch": "x86_64",
            "agent_version": "2.0.0",
            "labels": [],
            "scripts": [],
        },
        key=agent_key,
    )
    assert status == 200 and body["agent_id"] == "db-1", body

    gateway_metrics = f"http://127.0.0.1:{stack.loc.port('agent-gateway', '8001')}/metrics"

    def waiting_polls() -> float:
        req = urllib.request.Request(
            gateway_metrics, headers={"Authorization": f"Bearer {stack.read_key}"}
        )
        text = urllib.request.urlopen(req, timeout=5).read().decode()
        return float(re.search(r"^medic_agent_long_polls (\S+)$", text, re.M).group(1))

    answer: dict = {}
    poll = threading.Thread(
        target=lambda: answer.update(
            zip(
                ("status", "body"),
                stack.request("GET", "/v2/agent/jobs?wait=5", key=agent_key, timeout=30),
            )
        )
    )
    poll.start()
    wait_for(lambda: waiting_polls() == 1 or answer, 10, "the poll waiting in the gateway")
    assert not answer, "the poll was answered before it waited in the gateway"
    poll.join(30)
    assert answer["status"] == 204
    assert waiting_polls() == 0


def test_mcp_streamable_http_through_the_proxy(stack):
    """The compose file's mcp process behind the shipped nginx location: the SDK's own client
    (streamable HTTP, Bearer key, the public Host name) lists the tools and calls one; a
    request without a key is refused by Medic, not by the proxy."""
    import asyncio

    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    status, body = stack.request("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert status == 401 and body["error"]["code"] == "not_authenticated"

    async def main():
        http = httpx2.AsyncClient(
            verify=stack.tls,
            headers={"Authorization": f"Bearer {stack.read_key}", "Host": HOST},
            timeout=30,
        )
        async with http, Client(streamable_http_client(stack.url + "/mcp", http_client=http)) as c:
            tools = {t.name for t in (await c.list_tools()).tools}
            listed = await c.call_tool("list_services", {})
            return tools, listed

    tools, listed = asyncio.run(main())
    assert {"list_services", "get_service", "execute_playbook", "approve_execution"} <= tools
    assert not listed.is_error


def test_prometheus_scrapes_web_worker_gateway_and_mcp_with_the_shipped_config(stack):
    prom = stack.work / "prometheus"
    prom.mkdir()
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    for rules in config["rule_files"]:
        shutil.copy(ROOT / "deploy/prometheus" / rules, prom / rules)
    (prom / "medic.key").write_text(stack.read_key + "\n")
    # Service discovery finds compose's containers by name; here each name has one address.
    config["global"]["scrape_interval"] = "1s"
    jobs = {}
    for job in config["scrape_configs"]:
        targets = []
        for sd in job.pop("dns_sd_configs"):
            targets += [f"127.0.0.1:{stack.loc.port(n, str(sd['port']))}" for n in sd["names"]]
        job["static_configs"] = [{"targets": targets}]
        jobs[job["job_name"]] = targets
    assert set(jobs) == {"medic-web", "medic-worker", "medic-gateway", "medic-mcp"}
    (prom / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = subprocess.run(
        ["promtool", "check", "config", str(prom / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    port = free_port()
    proc = Proc(
        "prometheus",
        [
            "prometheus",
            f"--config.file={prom / 'prometheus.yml'}",
            f"--storage.tsdb.path={prom / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        dict(os.environ),
        stack.work / "prometheus.log",
    )
    try:

        def targets():
            try:
                raw = urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/targets", timeout=3
                ).read()
            except OSError:
                return None
            active = json.loads(raw)["data"]["activeTargets"]
            if len(active) == len(jobs) and all(t["health"] == "up" for t in active):
                return active
            return None

        active = wait_for(targets, 60, "every target up", [proc, *stack.medic])
        assert {t["labels"]["job"] for t in active} == set(jobs)
    finally:
        proc.stop()


def test_requirements_lock_is_exactly_what_pyproject_needs(venv):
    """The image's packages (installed from the lock, --no-deps) are the closure of
    pyproject.toml's dependencies: nothing missing, nothing left over, pins agree."""
    installed = {
        canonicalize_name(d.metadata["Name"]): d
        for d in importlib.metadata.distributions(path=[str(site_packages(venv))])
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = default_environment()
    needed: set[str] = set()
    seen: set[tuple[str, frozenset]] = set()
    todo = [Requirement(r) for r in project["dependencies"]]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if (name, frozenset(req.extras)) in seen:
            continue
        seen.add((name, frozenset(req.extras)))
        dist = installed.get(name)
        assert dist is not None, (
            f"{req} is needed but not in requirements.lock: run scripts/lock.sh"
        )
        assert req.specifier.contains(dist.version, prereleases=True), (
            f"{req} is needed, requirements.lock pins {dist.version}: run scripts/lock.sh"
        )
        needed.add(name)
        for raw in dist.requires or []:
            sub = Requirement(raw)
            extras = req.extras or {""}
            if sub.marker and not any(
                sub.marker.evaluate({**environment, "extra": e}) for e in extras
            ):
                continue
            todo.append(sub)
    locked = set()
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?==\S+(?:\s*;\s*([^\\]+))?", line)
        if match:
            marker = match.group(3)
            if marker and not Requirement(f"x; {marker.strip()}").marker.evaluate():
                continue
            locked.add(canonicalize_name(match.group(1)))
    assert locked - needed == set(), "requirements.lock is stale (run scripts/lock.sh)"
    assert needed <= locked
    check = subprocess.run([str(venv / "bin" / "pip"), "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_restore_drill_secrets_decrypt_in_a_fresh_cluster(stack):
    """docs/backup-restore.md: pg_dump, restore into a new cluster, start with the same keys."""
    targets = stack.request("GET", "/v2/notification-targets", key=stack.admin_key)[1]["results"]
    assert targets, "the alert test stores a webhook target with secrets first"
    dump = stack.work / "medic.dump"
    with dump.open("wb") as out:
        stack.pg.tool("pg_dump", "--format=custom", "medic", stdout=out)

    restored = Cluster(stack.work, stack.work / "secrets" / "postgres_password", "restored")
    stack.cleanups.append(restored.stop)
    restored.tool("pg_restore", "--no-owner", "--exit-on-error", "-d", "medic", str(dump))

    env = stack.env("migrate")
    env["DATABASE_URL"] = env["DATABASE_URL"].replace(f":{stack.pg.port}/", f":{restored.port}/")
    checked = stack.manage("check", "--database", "default", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # Restored without the key that sealed them: migrate, compose's first process, refuses
    # (naming the key), so nothing else starts.
    wrong = stack.work / "wrong-keys"
    wrong.write_text(f"k2:{base64.b64encode(os.urandom(32)).decode()}\n")
    migrated = stack.manage(
        "migrate", "--no-input", env={**env, "MEDIC_ENCRYPTION_KEYS_FILE": str(wrong)}
    )
    assert migrated.returncode != 0
    assert "medic.E010" in migrated.stderr and "encryption key 'k1'" in migrated.stderr


PROBE = """#!/bin/sh
# A registered script trying to read the worker's environment and its secret files.
echo "user=$(id -un)"
for arg in "$@"; do
  value="${arg#--*=}"
  case "$arg" in
    --pid=*) path="/proc/$value/environ"; what=environ ;;
    *) path="$value"; what=secret ;;
  esac
  if cat "$path" >/dev/null 2>&1; then echo "$what=read"; else echo "$what=denied"; fi
done
"""


def test_local_scripts_cannot_read_the_workers_secrets(stack):
    if os.geteuid() != 0:
        pytest.skip("the worker switches scripts to MEDIC_SANDBOX_USER only when it runs as root")
    user = stack.env("worker")["MEDIC_SANDBOX_USER"]
    assert shutil.which("id") and subprocess.run(["id", user]).returncode == 0, (
        f"the sandbox user {user} is missing (scripts/test.sh creates it, the Dockerfile too)"
    )
    secrets = stack.work / "secrets"
    status, body = stack.request(
        "POST",
        "/v2/scripts",
        {
            "name": "read_worker_secrets",
            "body": PROBE,
            "args_schema": {
                "type": "object",
                "properties": {
                    "pid": {"type": "string", "pattern": "^[0-9]+$"},
                    "secret_key": {"type": "string"},
                    "encryption_keys": {"type": "string"},
                },
                "additionalProperties": False,
            },
            "run_local": True,
        },
        key=stack.admin_key,
    )
    assert status == 201, body
    worker_pid = stack.procs["worker"].popen.pid
    status, body = stack.request(
        "POST",
        "/v2/scripts/read_worker_secrets/run",
        {
            "target": {"local": True},
            "args": {
                "pid": str(worker_pid),
                "secret_key": str(secrets / "secret_key"),
                "encryption_keys": str(secrets / "encryption_keys"),
            },
        },
        key=stack.admin_key,
    )
    assert status == 201, body
    job_id = body["jobs"][0]["id"]

    def finished():
        job = stack.request("GET", f"/v2/jobs/{job_id}", key=stack.admin_key)[1]
        return job if job["state"] not in ("queued", "running") else None

    job = wait_for(finished, 60, "the local job", stack.medic)
    assert job["state"] == "succeeded", job
    lines = job["stdout_tail"].split()
    assert lines[0] == f"user={user}"
    assert "environ=denied" in lines and "environ=read" not in lines, job["stdout_tail"]
    assert lines.count("secret=denied") == 2, job["stdout_tail"]


def test_medic_trusts_exactly_the_proxys_hop(stack):
    """Behind the proxy, the client address is the one nginx saw (not the proxy's, not what the
    client wrote in X-Forwarded-For): keyless requests from one client, each claiming another
    address, spend that client's budget (429), and another client is unaffected."""
    import http.client

    port = int(stack.loc.port("proxy", "443"))

    def keyless(source: str, claimed: str) -> tuple[int, dict]:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", port, source_address=(source, 0), context=stack.tls, timeout=10
        )
        try:
            conn.request("GET", "/v2/services", headers={"Host": HOST, "X-Forwarded-For": claimed})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    limit = int(stack.env("web").get("MEDIC_RATE_LIMIT_UNAUTHENTICATED", "30"))
    answers = []
    # Per-minute windows: at most one boundary is crossed, so 2 x limit + 1 requests must see a 429.
    for i in range(2 * limit + 1):
        status, body = keyless("127.0.0.5", f"198.51.100.{i % 250}")
        answers.append(status)
        if status == 429:
            break
    assert answers[-1] == 429 and set(answers[:-1]) == {401}, answers
    assert body["error"]["code"] == "rate_limited", body
    status, body = keyless("127.0.0.6", "127.0.0.5")
    assert status == 401, body
