"""`backorder serve gateway`: uvicorn serving create_app()."""

from __future__ import annotations

import uvicorn

from services.common.logs import configure_logging
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings.from_env()
    configure_logging("gateway", settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                access_log=False, proxy_headers=True, forwarded_allow_ips="*", timeout_graceful_shutdown=10)


if __name__ == "__main__":
    main()
