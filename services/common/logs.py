"""One JSON logger for every process: a line per record, on stderr.

Python warnings (a library's `InsecureKeyLengthWarning`, a `DeprecationWarning`) go through it
too, as records of the `py.warnings` logger: no raw text lands among the JSON lines. The
warnings filters still decide what is shown, so a warning raised on every request is logged
once per place it comes from. So do exceptions nobody caught (the main thread's, a thread's,
one Python can only report as "ignored"): a record with the traceback in `exc`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import warnings
from types import TracebackType
from typing import TextIO

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_warnings_log = logging.getLogger("py.warnings")


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    """`warnings.showwarning`, as one JSON record (where it came from in its own fields)."""
    _warnings_log.warning("%s: %s", category.__name__, message,
                          extra={"warning_file": filename, "warning_line": lineno})


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """`sys.excepthook`: the exception that ends the process, as one record."""
    logging.getLogger("uncaught").critical("uncaught %s: %s", kind.__name__, exc, exc_info=(kind, exc, tb))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        logging.getLogger("uncaught").error("uncaught %s in thread %s: %s", args.exc_type.__name__,
                                            args.thread.name if args.thread else "?", args.exc_value,
                                            exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """What Python would print as "Exception ignored in: …" (a failing __del__, a callback)."""
    logging.getLogger("uncaught").error(
        "%s: %r", unraisable.err_msg or "exception ignored in", unraisable.object,
        exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
        if unraisable.exc_value is not None else None)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    warnings.showwarning = _log_warning
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught
    sys.unraisablehook = _log_unraisable
    # Library chatter at INFO (every HTTP request, every NATS reconnect attempt) drowns ours.
    for noisy in ("httpx", "httpcore", "nats", "aiosqlite", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
