"""The v1 API's unprefixed paths (no trailing slash, as v1 served them). See docs/api-v1.md."""

from django.urls import path

from compat import v1

urlpatterns = [
    path("heartbeat", v1.heartbeat),
    path("service", v1.service),
    path("service/<str:heartbeat_name>", v1.service_detail),
    path("alerts", v1.alerts),
    path("docs/swagger.json", v1.swagger),
]
