"""`python -m sandbox.bigcommerce`: serve the sandbox with settings from BACKORDER_SANDBOX_* env vars."""

import logging

import uvicorn

from sandbox.bigcommerce.app import create_app
from sandbox.bigcommerce.config import SandboxConfig


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = SandboxConfig.from_env()
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning")


if __name__ == "__main__":
    main()
