"""Every line a service logs is JSON, Python warnings and uncaught exceptions included."""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator

import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning

from services.common.logs import configure_logging


@pytest.fixture
def json_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, showwarning = root.handlers[:], root.level, warnings.showwarning
    hooks = sys.excepthook, threading.excepthook, sys.unraisablehook
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        warnings.showwarning = showwarning
        sys.excepthook, threading.excepthook, sys.unraisablehook = hooks


def test_a_library_warning_is_logged_as_one_json_line_once_per_place(json_logging, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        short_key_token = jwt.encode({"sub": "stores/abc"}, "short", algorithm="HS256")
    configure_logging("gateway")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for _ in range(3):  # like three requests verifying a JWT with a short secret
            jwt.decode(short_key_token, "short", algorithms=["HS256"])
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "warning" and record["service"] == "gateway" and record["logger"] == "py.warnings"
    assert record["msg"].startswith(f"{InsecureKeyLengthWarning.__name__}: The HMAC key is 5 bytes long")
    assert record["warning_file"].endswith(".py") and record["warning_line"] > 0


def test_an_exception_nobody_caught_is_one_json_line_with_its_traceback(json_logging, capsys):
    configure_logging("catalog_sync")

    def fail() -> None:
        raise RuntimeError("the disk is full")

    worker = threading.Thread(target=fail, name="worker")
    worker.start()
    worker.join()
    try:
        fail()
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)  # what Python calls when the main thread dies
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["level"], r["logger"], r["msg"]) for r in records] == [
        ("error", "uncaught", "uncaught RuntimeError in thread worker: the disk is full"),
        ("critical", "uncaught", "uncaught RuntimeError: the disk is full"),
    ]
    assert all("Traceback" in r["exc"] and "in fail" in r["exc"] for r in records)

