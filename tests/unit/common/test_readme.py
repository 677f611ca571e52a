"""The README documents every environment variable the code reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NOT_SETTINGS = {"BACKORDER_EVENTS"}  # a JetStream stream name, not a variable


def test_every_backorder_variable_in_the_code_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    found: dict[str, str] = {}
    for folder in ("services", "sandbox", "tests/plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            for name in re.findall(r"[\"'](BACKORDER_[A-Z0-9_]*[A-Z0-9])[\"']", path.read_text()):
                found.setdefault(name, str(path.relative_to(ROOT)))
    missing = {name: where for name, where in found.items() if name not in readme and name not in NOT_SETTINGS}
    assert not missing, f"document these in README.md: {missing}"
