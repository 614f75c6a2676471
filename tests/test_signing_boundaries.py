"""`signing/` is the key room: it imports no web framework, ORM or other room, builds nothing at
import time, and every public function carries a docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import signing

FORBIDDEN = ("flask", "sqlalchemy", "issuer", "digilocker")
ROOT = Path(__file__).resolve().parent.parent
# Every module of the room, found on disk: a new file is checked without anyone listing it.
OURS = tuple(sorted(m.name for m in pkgutil.iter_modules(signing.__path__)))


def test_signing_imports_no_web_db_or_other_rooms() -> None:
    modules = ", ".join(f"signing.{name}" for name in OURS)
    code = (
        f"import sys, {modules}\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_public_functions_and_classes_have_docstrings() -> None:
    assert {"cbor_plain", "cose", "seal", "trust_store", "validate"} <= set(OURS)
    for name in OURS:
        module = importlib.import_module(f"signing.{name}")
        for attr, value in vars(module).items():
            if attr.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value) or inspect.isclass(value):
                assert inspect.getdoc(value), f"signing.{name}.{attr} has no docstring"
