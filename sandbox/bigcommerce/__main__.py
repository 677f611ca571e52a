"""`python -m sandbox.bigcommerce`: serve the sandbox with settings from BACKORDER_SANDBOX_* env vars."""

import json
import logging
import time

import uvicorn

from sandbox.bigcommerce.app import create_app
from sandbox.bigcommerce.config import SandboxConfig


class JsonLines(logging.Formatter):
    """The platform's log shape (one JSON object a line), written here because the sandbox shares
    no code with the platform it stands in for."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                 "level": record.levelname.lower(), "service": "sandbox", "logger": record.name,
                 "msg": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.captureWarnings(True)
    # httpx logs every request's URL at INFO, and an OAuth callback's URL carries the install `code`.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    config = SandboxConfig.from_env()
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning", log_config=None)


if __name__ == "__main__":
    main()
