"""catalog_sync integration tests run against the whole loop (see tests/e2e/conftest.py):
the sandbox, real NATS, real PostgreSQL, every service in-process and the gateway."""

from tests.e2e import conftest as e2e

sandbox_factory = e2e.sandbox_factory
platform_stack = e2e.platform_stack
platform = e2e.platform
