"""`make run`'s web server: a few uvicorn processes serving medic.front (scripts/web.sh).

    python -m medic.webserve --host 127.0.0.1 --port 8000 [--processes 2] [--log-config FILE]

It imports no Django itself: each process loads the application after the fork.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys


def serve(host: str, port: int, processes: int, uvicorn_args: dict) -> int:
    """Run ``processes`` web processes, each with its own listening socket on the same port
    (SO_REUSEPORT: the kernel spreads connections over them, where one shared socket lets the
    first event loop to wake take nearly all). Stops them all when one ends or on SIGINT/SIGTERM.
    """
    import signal
    import socket

    children: list[int] = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            import uvicorn

            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            config = uvicorn.Config("medic.front:application", **uvicorn_args)
            uvicorn.Server(config).run(sockets=[sock])
            os._exit(0)
        children.append(pid)

    def stop(signum, _frame) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        if pid in children:
            children.remove(pid)
            status = status or os.waitstatus_to_exitcode(code)
            stop(signal.SIGTERM, None)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medic.webserve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--log-config", default=None)
    args = parser.parse_args(argv)
    uvicorn_args = {
        "lifespan": "off",
        # Kept-alive connections cost the event loop a socket, not a thread.
        "timeout_keep_alive": 75,
        # Nothing in the embedded mode needs a long goodbye (scripts/run.sh stops it in 3 s).
        "timeout_graceful_shutdown": 3,
        "server_header": False,
        # As in production (medic/webworker.py): Medic reads X-Forwarded-For itself, trusting
        # MEDIC_TRUSTED_PROXY_HOPS hops; uvicorn must not rewrite the client address first.
        "proxy_headers": False,
    }
    if args.log_config:
        uvicorn_args["log_config"] = args.log_config
    return serve(args.host, args.port, args.processes, uvicorn_args)


if __name__ == "__main__":
    sys.exit(main())
