"""Makes the sandbox fixtures available here even before tests/conftest.py loads the plugin.

Once `pytest_plugins` there lists "tests.plugins.sandbox", these re-exports simply shadow the same fixtures.
"""

from tests.plugins.sandbox import sandbox, sandbox_factory, sandbox_server, serve_asgi

__all__ = ["sandbox", "sandbox_factory", "sandbox_server", "serve_asgi"]
