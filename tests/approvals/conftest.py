"""Real worker and web processes (tests/e2e) for the approvals end-to-end tests."""

from tests.e2e.conftest import start_web, start_worker  # noqa: F401
