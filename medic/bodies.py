"""Request bodies however they are framed: a WSGI layer in front of everything Medic serves.

Django reads ``CONTENT_LENGTH`` bytes of a WSGI body and treats a request without that header
as having none. gunicorn de-chunks ``Transfer-Encoding: chunked`` bodies but, as the WSGI spec
allows, sends no ``CONTENT_LENGTH`` for them, so every view saw a chunked body as empty: a
chunked ``{"status":"DOWN"}`` heartbeat was stored as UP, invalid JSON was accepted, a chunked
``/complete`` lost its ``run_id``. This layer reads such a body up to
``DATA_UPLOAD_MAX_MEMORY_SIZE`` (plus one byte, so that a longer one is still refused as too
large, with 413, by the same check as a body with a length) and hands it on with its length.
It sits in front of the heartbeat ingest handler (heartbeats/ingest.py) and Django alike.
"""

from __future__ import annotations

import io

from django.conf import settings

CHUNK = 64 * 1024
# Past the limit the rest is read and dropped, up to this much, so that the client (which sends
# its whole body before reading the answer) gets its 413 instead of a reset connection.
DRAIN_MAX = 16 * 1024 * 1024


class BodyFraming:
    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("HTTP_TRANSFER_ENCODING") and not environ.get("CONTENT_LENGTH"):
            body = read_unframed(environ["wsgi.input"], settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def read_unframed(stream, limit: int | None) -> bytes:
    """The body to its end, or its first ``limit + 1`` bytes (enough to know it is too long)."""
    parts: list[bytes] = []
    size = 0
    while limit is None or size <= limit:
        want = CHUNK if limit is None else min(CHUNK, limit + 1 - size)
        part = stream.read(want)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if limit is not None and size > limit:
        drained = 0
        while drained < DRAIN_MAX and (part := stream.read(CHUNK)):
            drained += len(part)
    return b"".join(parts)
