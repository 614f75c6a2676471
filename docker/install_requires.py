"""Print setup.py's install_requires, one a line, without running setup.py.

The image installs these in a layer of their own, before the code is copied in, so that a
change to the code rebuilds in seconds and only a change to setup.py downloads again.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def install_requires(setup_py: Path) -> list[str]:
    """The literal list passed as `install_requires=` in `setup_py`."""
    for node in ast.walk(ast.parse(setup_py.read_text(encoding="utf-8"))):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            value = ast.literal_eval(node.value)
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return value
    raise SystemExit(f"{setup_py}: no literal install_requires list")


if __name__ == "__main__":
    print("\n".join(install_requires(Path(sys.argv[1] if len(sys.argv) > 1 else "setup.py"))))
