"""The admin API runs against the whole real platform (the e2e stack: sandbox, services, gateway)."""

from tests.e2e.conftest import platform, platform_stack  # noqa: F401 - fixtures shared with the e2e tests
from tests.plugins.sandbox import sandbox_factory  # noqa: F401
