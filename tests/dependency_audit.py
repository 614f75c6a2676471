"""`make audit`: known vulnerabilities in every package installed in the venv, found with
pip-audit's own machinery (its pip dependency source and its auditor) and PyPI's vulnerability
data (PyPI publishes the OSV advisories of the PyPA database with each release).

    python -m tests.dependency_audit [--pypi-url URL] [--unaudited-warn] [--ignore-vuln ID ...]

pip-audit's stock `pypi` service asks PyPI for each installed release (/pypi/NAME/VERSION/json)
and skips a package whose release page is missing. The package index these machines reach
answers only the project page (/pypi/NAME/json), whose `vulnerabilities` are those of the latest
release. So each package is asked by release first and, where that page is missing, by project:
a package installed at its latest release is then audited exactly; one installed below its
latest release cannot be (an advisory fixed in a later release is not listed there) and is
reported as not audited, with the release it would need.

Exit 1 when a vulnerability is found (unless its id is ignored), or when a package could not be
audited (a release below the latest, the index not answering) unless --unaudited-warn (CI on a
machine without a full route to PyPI) says to print it and go on. Our own editable package is
not on PyPI and is left out.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from packaging.version import InvalidVersion, Version
from pip_audit._audit import Auditor
from pip_audit._dependency_source import PipSource
from pip_audit._service.interface import (
    ConnectionError as AuditConnectionError,
)
from pip_audit._service.interface import (
    Dependency,
    ResolvedDependency,
    ServiceError,
    SkippedDependency,
    VulnerabilityResult,
    VulnerabilityService,
)

PYPI = "https://pypi.org"
EDITABLE = "distribution marked as editable"  # pip-audit's reason for skipping an editable


class ReleaseOrLatestService(VulnerabilityService):
    """PyPI's vulnerability data for one installed release: its release page, else the project
    page when the installed release is the latest one."""

    def __init__(self, base_url: str = PYPI, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def query(self, spec: Dependency) -> tuple[Dependency, list[VulnerabilityResult]]:
        if spec.is_skipped():
            return spec, []
        assert isinstance(spec, ResolvedDependency)
        name, version = spec.canonical_name, spec.version
        page = self._get(f"/pypi/{name}/{version}/json")
        if page is None:
            page = self._get(f"/pypi/{name}/json")
            if page is None:
                return SkippedDependency(name=spec.name, skip_reason=(
                    f"{name} is not on PyPI: not audited")), []
            latest = _version(page["info"]["version"])
            if latest != version:
                return SkippedDependency(name=spec.name, skip_reason=(
                    f"{name} {version} is not its latest release ({latest}) and the index "
                    f"answers only for the latest: not audited")), []
        return spec, [_result(v) for v in page.get("vulnerabilities") or ()
                      if v.get("withdrawn") is None]

    def _get(self, path: str) -> dict[str, Any] | None:
        try:
            response = self.session.get(self.base_url + path, timeout=self.timeout)
        except requests.RequestException as error:
            raise AuditConnectionError(f"{self.base_url} cannot be reached: {error}") from error
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ServiceError(f"{self.base_url}{path} answered {response.status_code}")
        try:
            page: dict[str, Any] = response.json()
        except ValueError as error:
            raise ServiceError(f"{self.base_url}{path} did not answer JSON") from error
        return page


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion as error:
        raise ServiceError(f"PyPI gave a malformed version: {text!r}") from error


def _result(entry: dict[str, Any]) -> VulnerabilityResult:
    summary = entry.get("summary") or entry.get("details") or "N/A"
    return VulnerabilityResult.create(
        ids=[entry["id"], *entry.get("aliases", ())],
        description=summary.replace("\n", " "),
        fix_versions=sorted(_version(v) for v in entry.get("fixed_in", ())),
        published=VulnerabilityService._parse_rfc3339(entry.get("published")),
    )


@dataclass
class Outcome:
    audited: int = 0
    found: list[tuple[str, Version, VulnerabilityResult]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    unaudited: list[str] = field(default_factory=list)


def audit(service: VulnerabilityService, ignore: set[str]) -> Outcome:
    outcome = Outcome()
    source = PipSource(local=True, skip_editable=True)
    for dependency, vulnerabilities in Auditor(service).audit(source):
        if dependency.is_skipped():
            assert isinstance(dependency, SkippedDependency)
            if dependency.skip_reason != EDITABLE:  # our own package, not on PyPI
                outcome.unaudited.append(dependency.skip_reason)
            continue
        assert isinstance(dependency, ResolvedDependency)
        outcome.audited += 1
        for vulnerability in vulnerabilities:
            if vulnerability.has_any_id(ignore):
                outcome.ignored.append((dependency.canonical_name, vulnerability.id))
            else:
                outcome.found.append((dependency.canonical_name, dependency.version,
                                      vulnerability))
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pypi-url", default=PYPI)
    parser.add_argument("--unaudited-warn", action="store_true",
                        help="a package that could not be audited is printed, not a failure")
    parser.add_argument("--ignore-vuln", action="append", default=[], metavar="ID")
    args = parser.parse_args(argv)
    service = ReleaseOrLatestService(args.pypi_url)
    try:
        outcome = audit(service, set(args.ignore_vuln))
    except ServiceError as error:
        print(f"make audit: {error}: the dependencies were NOT audited")
        return 0 if args.unaudited_warn else 1
    for name, version, vulnerability in outcome.found:
        fixes = ", ".join(map(str, vulnerability.fix_versions)) or "no fixed release"
        also = "".join(f"also {alias}; " for alias in sorted(vulnerability.aliases))
        print(f"VULNERABLE {name} {version}: {vulnerability.id} ({also}fixed in: {fixes}): "
              f"{vulnerability.description[:200]}")
    for name, vid in outcome.ignored:
        print(f"ignored {name}: {vid} (AUDIT_IGNORE)")
    for reason in outcome.unaudited:
        print(f"NOT audited: {reason}")
    print(f"make audit: {outcome.audited} packages audited against {args.pypi_url}, "
          f"{len(outcome.found)} known vulnerabilities, {len(outcome.unaudited)} not audited")
    if outcome.found:
        return 1
    return 0 if args.unaudited_warn or not outcome.unaudited else 1


if __name__ == "__main__":
    sys.exit(main())
