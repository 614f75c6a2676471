"""`make audit` (tests/dependency_audit.py) against a PyPI JSON API served on 127.0.0.1: the
real pip-audit dependency source lists this venv, the index answers as PyPI does (release pages,
project pages, 404s), and the audit must report what the pages say."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import distributions
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from tests import dependency_audit


def installed() -> dict[str, str]:
    """Every distribution in this venv but our own editable one, as pip-audit names them."""
    found = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    found.pop("pramaan", None)
    return found


@dataclass
class FakePyPI:
    """What each page says; a project not named answers with its installed release as the latest
    one and no advisories, and has no release page (as the index on these machines)."""
    latest: dict[str, str] = field(default_factory=dict)
    project_vulns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    release_pages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    broken: bool = False
    asked: list[str] = field(default_factory=list)


@pytest.fixture
def pypi() -> Iterator[tuple[FakePyPI, str]]:
    state, versions = FakePyPI(), installed()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.asked.append(self.path)
            parts = self.path.strip("/").split("/")
            if state.broken:
                return self._answer(500, {"message": "down"})
            if len(parts) == 4 and parts[0] == "pypi" and parts[3] == "json":
                name = parts[1]
                if name in state.release_pages and parts[2] == versions.get(name):
                    return self._answer(200, {"info": {"version": parts[2]},
                                              "vulnerabilities": state.release_pages[name]})
                return self._answer(404, {"message": "Not Found"})
            if len(parts) == 3 and parts[0] == "pypi" and parts[2] == "json":
                name = parts[1]
                if name in state.missing or name not in versions:
                    return self._answer(404, {"message": "Not Found"})
                return self._answer(200, {
                    "info": {"version": state.latest.get(name, versions[name])},
                    "vulnerabilities": state.project_vulns.get(name, [])})
            return self._answer(404, {"message": "Not Found"})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def advisory(vid: str, fixed: list[str], **extra: Any) -> dict[str, Any]:
    return {"id": vid, "aliases": [f"CVE-{vid}"], "fixed_in": fixed,
            "summary": f"summary of {vid}", "details": "details", "withdrawn": None, **extra}


def run(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = dependency_audit.main(["--pypi-url", url, *args])
    return code, capsys.readouterr().out


def test_every_package_at_its_latest_release_without_advisories_passes(pypi, capsys):
    state, url = pypi
    code, out = run(url, capsys)
    count = len(installed())
    assert (code, out) == (0, f"make audit: {count} packages audited against {url}, 0 known "
                              f"vulnerabilities, 0 not audited\n")
    # Every package asked by release first, then by project; our editable package never.
    asked = set(state.asked)
    for name, version in installed().items():
        assert f"/pypi/{name}/{version}/json" in asked and f"/pypi/{name}/json" in asked
    assert not any(path.startswith("/pypi/pramaan/") for path in asked)


def test_an_advisory_of_the_latest_release_fails_and_is_named(pypi, capsys):
    state, url = pypi
    flask = installed()["flask"]
    state.project_vulns["flask"] = [
        advisory("PYSEC-0000-1", ["9.1", "9.0"]),
        advisory("PYSEC-0000-2", ["9.0"], withdrawn="2026-01-01T00:00:00Z")]
    code, out = run(url, capsys)
    assert code == 1
    assert f"VULNERABLE flask {flask}: PYSEC-0000-1 (also CVE-PYSEC-0000-1; fixed in: 9.0, " \
           "9.1): summary of PYSEC-0000-1\n" in out
    assert "PYSEC-0000-2" not in out  # withdrawn
    assert ", 1 known vulnerabilities, 0 not audited" in out


def test_an_ignored_advisory_is_printed_and_passes_by_id_or_alias(pypi, capsys):
    state, url = pypi
    state.project_vulns["flask"] = [advisory("PYSEC-0000-1", [])]
    for accepted in ("PYSEC-0000-1", "CVE-PYSEC-0000-1"):
        code, out = run(url, capsys, "--ignore-vuln", accepted)
        assert code == 0 and "ignored flask: PYSEC-0000-1 (AUDIT_IGNORE)\n" in out
        assert "VULNERABLE" not in out
    code, out = run(url, capsys, "--ignore-vuln", "PYSEC-0000-9")
    assert code == 1 and "VULNERABLE flask" in out


def test_a_release_page_is_believed_before_the_project_page(pypi, capsys):
    state, url = pypi
    jinja2 = installed()["jinja2"]
    state.release_pages["jinja2"] = [advisory("GHSA-test-0001", ["99"])]
    state.latest["jinja2"] = "99"  # the project page alone could not audit it
    code, out = run(url, capsys)
    assert code == 1
    assert f"VULNERABLE jinja2 {jinja2}: CVE-GHSA-test-0001 (also GHSA-test-0001; fixed in: " \
           "99): summary of GHSA-test-0001\n" in out
    assert "NOT audited" not in out


def test_a_package_below_its_latest_release_is_not_audited(pypi, capsys):
    state, url = pypi
    redis = installed()["redis"]
    state.latest["redis"] = "99.0"
    state.project_vulns["redis"] = [advisory("PYSEC-0000-3", ["99.0"])]  # not about ours
    code, out = run(url, capsys)
    line = (f"NOT audited: redis {redis} is not its latest release (99.0) and the index answers "
            f"only for the latest: not audited\n")
    assert code == 1 and line in out and "VULNERABLE" not in out
    assert f"{len(installed()) - 1} packages audited" in out and ", 1 not audited" in out
    code, out = run(url, capsys, "--unaudited-warn")
    assert code == 0 and line in out


def test_a_package_unknown_to_the_index_is_not_audited(pypi, capsys):
    state, url = pypi
    state.missing.add("flask")
    code, out = run(url, capsys)
    assert code == 1 and "NOT audited: flask is not on PyPI: not audited\n" in out


@pytest.mark.parametrize("how", ["closed port", "server error"])
def test_an_index_that_does_not_answer_audits_nothing(pypi, capsys, how):
    state, url = pypi
    if how == "closed port":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    else:
        state.broken = True
    code, out = run(url, capsys)
    assert code == 1 and out.startswith("make audit: ") and out.endswith(
        ": the dependencies were NOT audited\n")
    assert (url + " cannot be reached" in out) == (how == "closed port")
    code, out = run(url, capsys, "--unaudited-warn")
    assert code == 0 and "NOT audited" in out
