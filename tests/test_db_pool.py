"""The server database's connection pool keeps one connection per request thread (at least
five), so no thread opens and closes a connection of its own per request."""

from __future__ import annotations

from pathlib import Path

import pytest

from issuer.runtime import Runtime
from tests.conftest import POSTGRES_URL, make_settings


@pytest.mark.parametrize(("threads", "kept"), [(1, 5), (4, 5), (8, 8), (32, 32)])
def test_the_pool_keeps_a_connection_per_thread(tmp_path: Path, keys_dir: Path, threads: int,
                                                kept: int) -> None:
    runtime = Runtime(make_settings(tmp_path, POSTGRES_URL, keys_dir, web_threads=threads))
    try:
        assert runtime.engine.pool.size() == kept  # type: ignore[attr-defined]
    finally:
        runtime.close()
