"""Bad input gets a clear problem+json error with a stable code, and nothing is stored."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from issuer.models import AuditEvent, Certificate
from tests.conftest import Live, sample


def count_rows(live: Live) -> tuple[int, int]:
    with live.runtime.sessions() as session:
        certs = session.scalar(select(func.count()).select_from(Certificate)) or 0
        events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    return certs, events


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def field_codes(body: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["code"] for e in body["errors"]}


def without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def test_missing_fields(live: Live) -> None:
    data = without(without(sample("birth-1"), "child", "date_of_birth"), "mother")
    body = assert_problem(live.post_json("/api/v1/certificates", data), 422, "validation_failed")
    assert field_codes(body) == {"child.date_of_birth": "required", "mother": "required"}
    assert count_rows(live) == (0, 0)


def test_wrong_types(live: Live) -> None:
    data = sample("birth-1")
    data["child"]["name"] = "Aarav"
    data["registration_date"] = 20260302
    data["child"]["sex"] = "unknown"
    body = assert_problem(live.post_json("/api/v1/certificates", data), 422, "validation_failed")
    assert field_codes(body) == {
        "child.name": "type",
        "registration_date": "type",
        "child.sex": "choice",
    }
    assert count_rows(live) == (0, 0)


def test_future_date(live: Live) -> None:
    data = sample("birth-1")
    data["child"]["date_of_birth"] = (date.today() + timedelta(days=3)).isoformat()
    data["registration_date"] = (date.today() + timedelta(days=4)).isoformat()
    body = assert_problem(live.post_json("/api/v1/certificates", data), 422, "validation_failed")
    codes = field_codes(body)
    assert codes["child.date_of_birth"] == "future_date"
    assert codes["registration_date"] == "future_date"
    assert count_rows(live) == (0, 0)


@pytest.mark.parametrize(
    ("mutate", "field", "code"),
    [
        (lambda d: d.update(type="passport"), "type", "choice"),
        (lambda d: d.update(surprise=1), "surprise", "unknown_field"),
        (lambda d: d["child"]["name"].update(mr="Aarav"), "child.name.mr", "not_devanagari"),
        (lambda d: d.update(registration_date="02-03-2026"), "registration_date", "format"),
        (lambda d: d.update(registration_date="2026-W10-1"), "registration_date", "format"),
        (lambda d: d.update(registration_date="20260302"), "registration_date", "format"),
        (lambda d: d.update(registration_number="../../etc"), "registration_number", "format"),
        (lambda d: d.update(registration_date="2026-01-01"), "registration_date", "before_birth"),
        (lambda d: d["applicant"].update(mobile="call me"), "applicant.mobile", "format"),
        (lambda d: d["child"]["name"].update(en="x" * 500), "child.name.en", "too_long"),
        (lambda d: d["child"]["name"].update(en="Aarav 🙂"), "child.name.en",
         "unsupported_character"),
        (lambda d: d["child"]["name"].update(en="李 Wei"), "child.name.en",
         "unsupported_character"),
        (lambda d: d["permanent_address"].update(en="Flat " + "9" * 41), "permanent_address.en",
         "word_too_long"),
        (lambda d: d["child"]["name"].update(mr="\u200d\u200c\u200d"), "child.name.mr",
         "no_letters"),
        (lambda d: d["child"]["name"].update(mr="Aarav Kulkarni आ"), "child.name.mr",
         "not_devanagari"),
        (lambda d: d["child"]["name"].update(en="आरव कुलकर्णी a"), "child.name.en", "not_latin"),
        (lambda d: d["child"]["name"].update(mr="क" + "\u0901" * 39), "child.name.mr",
         "too_many_marks"),
        (lambda d: d.update(registration_number="B-" + "4" * 50), "registration_number",
         "too_long"),
    ],
)
def test_field_rules(live: Live, mutate: Any, field: str, code: str) -> None:
    data = sample("birth-1")
    mutate(data)
    body = assert_problem(live.post_json("/api/v1/certificates", data), 422, "validation_failed")
    assert field_codes(body).get(field) == code, body["errors"]
    assert count_rows(live) == (0, 0)


def test_not_an_object(live: Live) -> None:
    body = assert_problem(live.post_json("/api/v1/certificates", [1, 2]), 422, "validation_failed")
    assert body["errors"][0]["code"] == "type"


def test_non_json(live: Live) -> None:
    bad = live.http.post(live.url("/api/v1/certificates"), data=b"{not json",
                         headers={"Content-Type": "application/json"}, timeout=30)
    assert_problem(bad, 400, "invalid_json")
    nan = live.http.post(live.url("/api/v1/certificates"), data=b'{"type": NaN}',
                         headers={"Content-Type": "application/json"}, timeout=30)
    assert_problem(nan, 400, "invalid_json")
    deep = live.http.post(live.url("/api/v1/certificates"), data=b"[" * 100_000,
                          headers={"Content-Type": "application/json"}, timeout=30)
    assert_problem(deep, 400, "invalid_json")
    form = live.http.post(live.url("/api/v1/certificates"), data="type=birth",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert_problem(form, 415, "unsupported_media_type")
    assert count_rows(live) == (0, 0)


def test_deep_nesting(live: Live) -> None:
    data = sample("birth-1")
    deep: Any = "x"
    for _ in range(600):
        deep = {"a": deep}
    data["remarks"] = deep
    body = assert_problem(live.post_json("/api/v1/certificates", data), 422, "validation_failed")
    assert body["errors"][0]["code"] == "too_deep"
    assert count_rows(live) == (0, 0)


def test_oversized_chunked_body(live: Live) -> None:
    limit = live.runtime.settings.max_body_bytes

    def chunks() -> Any:
        yield b'{"type": "birth", "remarks": "'
        for _ in range(limit // 1000 + 2):
            yield b"x" * 1000
        yield b'"}'

    response = live.http.post(live.url("/api/v1/certificates"), data=chunks(),
                              headers={"Content-Type": "application/json"}, timeout=30)
    assert_problem(response, 413, "body_too_large")
    assert count_rows(live) == (0, 0)


def test_oversized_body(live: Live) -> None:
    data = sample("birth-1")
    data["remarks"]["en"] = "x" * (live.runtime.settings.max_body_bytes + 10)
    assert_problem(live.post_json("/api/v1/certificates", data), 413, "body_too_large")
    assert count_rows(live) == (0, 0)


def test_auth(live: Live) -> None:
    anonymous = requests.post(live.url("/api/v1/certificates"), json=sample("birth-1"), timeout=30)
    assert_problem(anonymous, 401, "unauthorized")
    wrong = requests.post(live.url("/api/v1/certificates"), json=sample("birth-1"), timeout=30,
                          headers={"Authorization": "Bearer pmn_nope"})
    assert_problem(wrong, 401, "unauthorized")
    assert count_rows(live) == (0, 0)


def test_unknown_and_malformed_ids(live: Live) -> None:
    assert_problem(live.get("/api/v1/certificates/not-a-uuid"), 404, "not_found")
    missing = "/api/v1/certificates/00000000-0000-4000-8000-000000000000"
    assert_problem(live.get(missing), 404, "not_found")
    assert_problem(live.get(missing + "/pdf"), 404, "not_found")
    assert_problem(live.get("/no/such/route"), 404, "not_found")
    assert_problem(live.http.delete(live.url("/api/v1/certificates"), timeout=30), 405,
                   "method_not_allowed")


def test_verify_endpoint_bad_input(live: Live) -> None:
    body = assert_problem(live.post_json("/api/v1/verify", {"qr": ""}), 422, "validation_failed")
    assert body["errors"][0]["field"] == "qr"
    garbage = live.post_json("/api/v1/verify", {"qr": "hello"})
    assert garbage.status_code == 200
    assert garbage.json()["genuine"] is False


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_verify_body_gets_field_errors_with_stable_codes(live: Live) -> None:
    from issuer.verify_request import MAX_QR

    longer = live.post_json("/api/v1/verify", {"qr": "1" * (MAX_QR + 1)})
    assert field_codes(assert_problem(longer, 422, "validation_failed")) == {"qr": "too_long"}
    for body in ({}, {"qr": None}, {"qr": 7}, {"qr": " \n"}):
        blank = assert_problem(live.post_json("/api/v1/verify", body), 422, "validation_failed")
        assert field_codes(blank) == {"qr": "required"}, body
    listed = assert_problem(live.post_json("/api/v1/verify", ["qr"]), 422, "validation_failed")
    assert field_codes(listed) == {"": "type"}
    longest = live.post_json("/api/v1/verify", {"qr": "1" * MAX_QR})  # read, and not genuine
    assert longest.status_code == 200 and longest.json()["genuine"] is False


def test_app_refuses_to_start_with_a_mismatched_key(tmp_path: Any, sqlite_url: str,
                                                     keys_dir: Any) -> None:
    import shutil

    from api import create_app
    from signing.errors import KeyCertMismatch
    from tests.conftest import make_settings

    bad = tmp_path / "keys"
    shutil.copytree(keys_dir, bad)
    (bad / "signer.key").write_bytes((bad / "ca.key").read_bytes())
    with pytest.raises(KeyCertMismatch, match="does not match"):
        create_app(make_settings(tmp_path, sqlite_url, bad))


def test_registration_number_at_its_limit_is_issued(live: Live) -> None:
    data = sample("birth-1")
    data["registration_number"] = "B/2026/PMC-" + "0" * 29  # 40 characters, one printed word
    response = live.post_json("/api/v1/certificates", data)
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "issued"  # rendered: embedded mode issues inline


def test_duplicate_keys_are_refused(live: Live) -> None:
    for raw in (b'{"type": "birth", "type": "birth"}',
                b'{"child": {"name": {"en": "Aarav", "mr": "x", "mr": "\xe0\xa4\x86"}}}'):
        response = live.http.post(live.url("/api/v1/certificates"), data=raw, timeout=30,
                                  headers={"Content-Type": "application/json"})
        body = assert_problem(response, 400, "invalid_json")
        assert "duplicate key" in body["detail"]
    assert "'mr'" in body["detail"]
    assert count_rows(live) == (0, 0)


def test_field_errors_are_capped(live: Live) -> None:
    data = sample("birth-1")
    unknown = {f"k{i:05d}": 0 for i in range(20_000)}  # about 248 KB of unknown keys
    data.update(unknown)
    response = live.post_json("/api/v1/certificates", data)
    body = assert_problem(response, 422, "validation_failed")
    assert len(body["errors"]) == 50
    assert body["error_count"] == 20_000 and body["errors_truncated"] is True
    assert len(response.content) < 20_000
    few = assert_problem(live.post_json("/api/v1/certificates", {**sample("birth-1"), "x": 1}),
                         422, "validation_failed")
    assert few["error_count"] == 1 and few["errors_truncated"] is False
    assert count_rows(live) == (0, 0)
