"""Authentication and scope checks, shared by DRF views and the lean plain-Django endpoints.

Scopes:
- ``read``  — safe methods (GET, HEAD, OPTIONS) on every non-admin endpoint;
- ``write`` — heartbeats and changes (POST, PUT, PATCH, DELETE) on every non-admin endpoint;
- ``admin`` — everything, including API keys (views mark themselves ``required_scope = "admin"``);
- ``agent`` — only ``/v2/agent/*``, for the one agent the key is bound to (remediation.agent_api
  checks the scope and the binding). It holds none of the scopes above, so every other endpoint
  refuses it with 403 through ``require_scope``.
"""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from medic import ratelimit
from medic.apikeys import api_key_verify
from medic.errors import Forbidden, MedicError, NotAuthenticated
from medic.models import ApiKey
from medic.refusals import refused

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def presented_key(request: HttpRequest) -> str | None:
    return presented_key_in(request.META)


def presented_key_in(meta: dict) -> str | None:
    """The API key in a request's headers (``request.META`` or a WSGI environ): None when there
    is none, "" when one is presented malformed."""
    header = meta.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""  # present but not a bearer token: treated as malformed
    value = meta.get("HTTP_X_API_KEY")
    if value is not None:
        return value.strip()
    return None


def authenticate(request: HttpRequest) -> ApiKey:
    """Return the request's API key or raise NotAuthenticated (counted by reason).

    Rate limits apply here, for every endpoint: a source address that keeps failing is refused
    before any key work (a key already verified in this process needs none, so a trusted client
    behind the same address is not locked out), and a working key is charged to its class
    budget. The decision is kept on the request so the response carries X-RateLimit-* headers.
    """
    key = identify(request)
    kind = ratelimit.request_class(request)
    request.medic_ratelimit = ratelimit.hit(kind, str(key.pk), key.rate_limits.get(kind))
    return key


def authenticate_many(requests: list[HttpRequest]) -> list[ApiKey | MedicError]:
    """``authenticate`` for each request, in order, with one round trip to the rate limiter for
    all of them: per request its key, or the error ``authenticate`` would raise."""
    keys: list[ApiKey | MedicError] = []
    for request in requests:
        try:
            keys.append(identify(request))
        except MedicError as exc:
            keys.append(exc)
    charged = [(n, key) for n, key in enumerate(keys) if isinstance(key, ApiKey)]
    hits = []
    for n, key in charged:
        kind = ratelimit.request_class(requests[n])
        hits.append((kind, str(key.pk), key.rate_limits.get(kind)))
    for (n, _), decision in zip(charged, ratelimit.hit_many(hits), strict=True):
        if isinstance(decision, ratelimit.Decision):
            requests[n].medic_ratelimit = decision
        else:
            keys[n] = decision
    return keys


def identify(request: HttpRequest) -> ApiKey:
    """The request's API key, not yet charged to its rate limit, or raise NotAuthenticated
    (counted by reason; the source address charged with the failure)."""
    address = ratelimit.client_address(request)
    secret = presented_key(request)
    try:
        if not secret:
            ratelimit.check_address(address)
        if secret is None:
            refused("missing")
            raise NotAuthenticated()
        if not secret:
            refused("malformed")
            raise NotAuthenticated(
                "Use 'Authorization: Bearer mdk_...' or 'X-API-Key: mdk_...'.",
                code="api_key_malformed",
            )
        key = api_key_verify(secret, gate=lambda: ratelimit.check_address(address))
    except NotAuthenticated:
        ratelimit.record_failure(address)
        raise
    return key


def refuse_anonymous(request: HttpRequest) -> NotAuthenticated:
    """The error for a request that presented no key where one is needed (counted, charged)."""
    address = ratelimit.client_address(request)
    ratelimit.check_address(address)
    refused("missing")
    ratelimit.record_failure(address)
    return NotAuthenticated()


def scope_for(method: str, required_scope: str | None = None) -> str:
    if required_scope:
        return required_scope
    return "read" if method.upper() in SAFE_METHODS else "write"


def require_scope(key: ApiKey, scope: str) -> None:
    if "admin" in key.scopes or scope in key.scopes:
        return
    refused("insufficient_scope")
    raise Forbidden(
        f"This API key has scopes [{', '.join(key.scopes)}]; this action needs '{scope}'.",
        code="insufficient_scope",
    )


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        if presented_key(request._request) is None:
            return None  # let other authenticators try; ScopePermission refuses if none did
        return (None, authenticate(request._request))

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="medic"'


class ScopePermission(BasePermission):
    """One permission class for every API view: method-based scope, or the view's own."""

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if isinstance(key, ApiKey):
            require_scope(key, scope_for(request.method, getattr(view, "required_scope", None)))
            return True
        user = request.user
        # Staff signed in to the admin may read the API documentation (schema, Swagger UI).
        if user is not None and user.is_authenticated and user.is_staff:
            if request.method in SAFE_METHODS:
                return True
            raise Forbidden("Browser sessions are read-only here; use an API key.")
        raise refuse_anonymous(request._request)


class RateLimitHeadersMiddleware:
    """Adds X-RateLimit-* headers to responses of rate-limited requests."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        decision = getattr(request, "medic_ratelimit", None)
        if decision is not None and decision.limit:
            for name, value in decision.headers().items():
                response.headers.setdefault(name, value)
        return response
