"""The committed generated code matches protos/, and the protos pass buf's STANDARD lint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_generated_code_is_not_stale():
    result = subprocess.run([sys.executable, "tools/gen_protos.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_protos_pass_buf_lint():
    buf = Path(sys.executable).parent / "buf"
    command = str(buf) if buf.exists() else shutil.which("buf")
    assert command, "buf is not installed (pip install buf-bin; it is in the dev extras)"
    result = subprocess.run([command, "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
