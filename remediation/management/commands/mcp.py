"""Medic's MCP server: stdio (an MCP desktop client launches it) or streamable HTTP at /mcp."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from medic.errors import MedicError


def _public_hosts() -> list[str]:
    """ALLOWED_HOSTS as Host header values: each name as is and with any port (a proxy may
    forward ``medic.example.com`` or ``medic.example.com:8443``). Django's wildcards (``*``,
    ``.example.com``) have no equivalent here and are left out: list the names with
    --allowed-host instead."""
    names = [h for h in settings.ALLOWED_HOSTS if h and h != "*" and not h.startswith(".")]
    return [form for name in names for form in (name, f"{name}:*")]


class Command(BaseCommand):
    help = (
        "Serve Medic's MCP tools. stdio by default (the API key comes from MEDIC_MCP_API_KEY); "
        "--http serves streamable HTTP at /mcp, each request with Authorization: Bearer <key>."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--http", action="store_true", help="Serve streamable HTTP at /mcp.")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--allowed-host",
            action="append",
            default=[],
            help="Host header values accepted (DNS-rebinding protection); repeatable. "
            "Default: HOST:PORT, localhost:PORT, 127.0.0.1:PORT and the names of ALLOWED_HOSTS "
            "(as a reverse proxy forwards them).",
        )

    def handle(self, *args, **options) -> None:
        from remediation import mcp_server

        if options["http"]:
            import uvicorn

            port = options["port"]
            hosts = options["allowed_host"] or [
                f"{options['host']}:{port}",
                f"localhost:{port}",
                f"127.0.0.1:{port}",
                *_public_hosts(),
            ]
            uvicorn.run(
                mcp_server.http_app(hosts), host=options["host"], port=port, log_level="warning"
            )
            return
        from medic.apikeys import api_key_verify

        secret = os.environ.get("MEDIC_MCP_API_KEY", "")
        if not secret:
            raise CommandError("Set MEDIC_MCP_API_KEY to the Medic API key the tools act with.")
        try:
            key = api_key_verify(secret)
        except MedicError as exc:
            raise CommandError(f"MEDIC_MCP_API_KEY: {exc.message}") from exc
        mcp_server.CURRENT_KEY.set(key)
        mcp_server.build().run("stdio")
