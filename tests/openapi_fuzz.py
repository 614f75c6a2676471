"""Schemathesis over the whole API against its own OpenAPI document (api_openapi.py): requests
generated from the document (valid ones, and invalid ones that must be refused) sent to a running
server with a token of the role each operation needs; every answer checked by Schemathesis
(no 5xx, documented status, content type and schema) and by us (every error is problem+json).

Used by tests/test_openapi_fuzz.py (a quick form) and `make schemathesis`
(`python -m tests.openapi_fuzz URL`, with tokens from `pramaan token create`)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

PROBLEM = "application/problem+json"
# Which role's token each operation is sent with (the rest: a clerk's).
ROLE_OF_PATH: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^/api/v1/(tokens|users)|^/metrics|^/admin/"), "admin"),
    (re.compile(r"^/api/v1/(audit|rts)"), "auditor"),
    (re.compile(r"/(approve|reject|revoke|retry)$"), "officer"),
)
# Answers that are not ours to make problem+json: DigiLocker's protocol (XML or text), the
# redirect of the link page.
NOT_PROBLEM_JSON = ("/digilocker/pulluri", "/digilocker/pulldoc")
# Whether data the schema allows is accepted, and data it forbids refused: the schema states what
# JSON Schema can (the rest in descriptions and x-pramaan-*: scripts, check digits, cursors), and
# unknown query parameters are ignored, so both would report the schema's known limits.
# tests/test_openapi.py holds the request schemas to the validators instead.
NOT_CHECKED = [positive_data_acceptance, negative_data_rejection]

RAW_MEDIA = ("application/pdf", "text/csv", "application/x-ndjson", "application/xml")


@dataclass
class Report:
    cases: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def role_for(path: str) -> str:
    return next((role for pattern, role in ROLE_OF_PATH if pattern.search(path)), "clerk")


def fuzz(base_url: str, tokens: Mapping[str, str], max_examples: int,
         ids: Mapping[str, list[str]] | None = None,
         modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
         only: Callable[[str], bool] = lambda path: True) -> Report:
    """Run every operation's generated cases against `base_url`; collect, never stop at, the
    failures. `ids`: real ids by path parameter name, mixed in with generated ones."""
    # Files and XML go as the bytes generated for them.
    schemathesis.serializer.alias(list(RAW_MEDIA), "application/octet-stream")
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json")
    report = Report()
    http = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        if not only(operation.path):
            continue
        auth = {"Authorization": f"Bearer {tokens[role_for(operation.path)]}"}
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode)
            known = {name: values for name, values in (ids or {}).items()
                     if f"{{{name}}}" in operation.path and values}
            if known and mode == GenerationMode.POSITIVE:
                strategy = st.one_of(strategy, *[
                    operation.as_strategy(generation_mode=mode,
                                          path_parameters={name: value})
                    for name, values in known.items() for value in values])
            _run(operation, strategy, base_url, http, auth, max_examples, report)
    return report


def _run(operation: Any, strategy: Any, base_url: str, http: requests.Session,
         auth: dict[str, str], max_examples: int, report: Report) -> None:
    @settings(max_examples=max_examples, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def one(case: Any) -> None:
        report.cases += 1
        response = case.call(base_url=base_url, session=http, headers=auth, timeout=60,
                             allow_redirects=False)
        report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
        where = f"{case.method} {case.formatted_path}"
        try:
            case.validate_response(response, headers=auth, excluded_checks=NOT_CHECKED)
        except (AssertionError, BaseExceptionGroup) as exc:  # failures: recorded, not raised
            report.failures.append(f"{where} -> {response.status_code}: {_short(exc)}\n"
                                   f"    {case.as_curl_command(headers=auth)}")
        problem = _problem_complaint(operation.path, response)
        if problem:
            report.failures.append(f"{where} -> {response.status_code}: {problem}")

    try:
        one()
    except Unsatisfiable:  # nothing to negate (an operation without inputs): nothing to send
        report.skipped.append(f"{operation.method.upper()} {operation.path}")


def _problem_complaint(path: str, response: Any) -> str | None:
    if response.status_code < 400 or path in NOT_PROBLEM_JSON:
        return None
    # Schemathesis's response: headers by lower-case name, each a list of values.
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    if media != PROBLEM:
        return f"an error answered as {media!r}, not {PROBLEM}"
    body = response.json()
    missing = {"type", "title", "status", "detail", "code"} - set(body)
    return f"a problem without {sorted(missing)}" if missing else None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n\n", "\n")
    return text[:1500]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="the running service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--max-examples", type=int, default=100)
    args = parser.parse_args(argv)
    tokens = {role: os.environ[f"PRAMAAN_{role.upper()}_TOKEN"]
              for role in ("clerk", "officer", "auditor", "admin")}
    report = fuzz(args.url.rstrip("/"), tokens, args.max_examples)
    for failure in report.failures:
        print(failure)
    print(f"{report.cases} generated cases, {len(report.failures)} failures; answers by status: "
          f"{dict(sorted(report.statuses.items()))}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
