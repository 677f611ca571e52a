"""Regenerate gen/ from protos/ (python, grpc, mypy stubs).

Generation goes to a temporary folder first and replaces gen/backorder whole, so a file
removed from protos/ disappears from gen/ too. `--check` compares instead of writing and
exits 1 on drift (the test suite runs it).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"
# The mypy plugins are console scripts installed beside this interpreter.
BIN = Path(sys.executable).parent


def generate(out: Path) -> None:
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    # protoc's plugins chatter on stderr ("Writing mypy to …" per file): keep it for a failure.
    with tempfile.TemporaryFile() as chatter:
        saved = os.dup(2)
        os.dup2(chatter.fileno(), 2)
        try:
            status = protoc.main(args)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        if status != 0:
            chatter.seek(0)
            sys.stderr.write(chatter.read().decode(errors="replace"))
            raise SystemExit("protoc failed")
    for folder in [out / "backorder", *(p for p in (out / "backorder").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    (out / "backorder" / "py.typed").touch()


def differences(a: Path, b: Path) -> list[str]:
    found: list[str] = []

    def walk(cmp: filecmp.dircmp, prefix: str) -> None:
        found.extend(f"{prefix}{n} (only in generated)" for n in cmp.left_only)
        found.extend(f"{prefix}{n} (only in gen/)" for n in cmp.right_only if n != "__pycache__")
        found.extend(f"{prefix}{n} (differs)" for n in cmp.diff_files)
        for name, sub in cmp.subdirs.items():
            if name != "__pycache__":
                walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(a, b, ignore=["__pycache__"]), "")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when gen/ is stale")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        if options.check:
            drift = differences(out / "backorder", GEN / "backorder") if (GEN / "backorder").exists() else ["gen/backorder missing"]
            if drift:
                print("gen/ is stale; run `make protos`:\n  " + "\n  ".join(drift), file=sys.stderr)
                return 1
            return 0
        shutil.rmtree(GEN / "backorder", ignore_errors=True)
        GEN.mkdir(exist_ok=True)
        shutil.copytree(out / "backorder", GEN / "backorder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
