"""Content-Security-Policy on every response: scripts, styles, images and fonts only from Medic
itself, no inline script or style (the portal's templates use classes; the Swagger UI's start-up
script is served as a file by drf-spectacular's split view), no plugins, no framing, forms post
only to Medic. A page that needs more must say why and widen its own header, not this one."""

from __future__ import annotations

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
