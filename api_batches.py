"""The batch endpoints (issuer/batches.py over HTTP): upload a CSV or JSON Lines file, follow
its progress, download the report of bad rows, approve or reject it as a whole.

    POST /api/v1/batches?type=birth&mode=valid_rows   the file as the body (text/csv or
         application/x-ndjson) or as the `file` field of a multipart form; Idempotency-Key
    GET  /api/v1/batches/<id>                          counts, rate, ETA, the bad rows
    GET  /api/v1/batches/<id>/report.csv               the bad rows, one field error a line
    GET  /api/v1/batches/<id>/sample                   lines of rows spread through the file
    GET  /api/v1/batches/<id>/sample/<line>.pdf        a row rendered as a specimen (unsigned)
    GET  /api/v1/batches/<id>/certificates.zip         signed PDFs and a CSV of every row
    POST /api/v1/batches/<id>/retry                    the failed certificates, again
    POST /api/v1/batches/<id>/approve | /reject        an officer who did not upload it (and
                                                       opened a specimen, to approve)
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from typing import Any, cast

from flask import Blueprint, Response, jsonify, request, stream_with_context
from werkzeug.exceptions import RequestEntityTooLarge

from api import _optional_body, audit_store_failure, db, principal, runtime
from issuer.batch_archive import archive
from issuer.batch_files import format_of
from issuer.batch_sample import sample_lines, specimen
from issuer.batch_views import BatchView, RowError
from issuer.batches import (
    BatchState,
    Upload,
    approve_batch,
    batch_type,
    error_report,
    progress,
    reject_batch,
    retry_failed_rows,
    upload,
)
from issuer.errors import FieldError, NotFound, UnsupportedMedia, ValidationFailed
from issuer.models import Batch
from issuer.permissions import Action, deny, require
from issuer.tokens import Principal
from issuer.workflow import reason_of


def batches_api() -> Blueprint:
    bp = Blueprint("batches", __name__, url_prefix="/api/v1")

    @bp.post("/batches")
    def create() -> tuple[Response, int, dict[str, str]]:
        who = principal()
        require(runtime().sessions, who, Action.SUBMIT)
        sent = _upload_of_request()
        session = db()
        try:
            batch, created = upload(session, who.department, who.actor, sent,
                                    runtime().settings)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        if created and batch.state == BatchState.APPROVED:  # a department approving itself
            runtime().dispatcher.enqueue_batch(batch.id)
        body = batch_view(batch)
        return jsonify(body), 201 if created else 200, {"Location": body["links"]["self"]}

    @bp.get("/batches/<batch_id>")
    def show(batch_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.READ)
        return jsonify(batch_view(_owned(batch_id, who, Action.READ)))

    @bp.get("/batches/<batch_id>/report.csv")
    def report(batch_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.READ)
        batch = _owned(batch_id, who, Action.READ)
        return _download(Response(stream_with_context(_csv_lines(error_report(batch))),
                                  mimetype="text/csv"), f"batch-{batch.id}-report.csv")

    @bp.get("/batches/<batch_id>/certificates.zip")
    def certificates_zip(batch_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.READ)
        batch = _owned(batch_id, who, Action.READ)
        rt, asked = runtime(), request.path  # the ZIP streams after the request's context
        return _download(Response(archive(
            rt.sessions, batch.id, rt.store.get,
            lambda exc, cert_id: audit_store_failure(rt, exc, asked, cert_id)),
            mimetype="application/zip"), f"batch-{batch.id}.zip")

    @bp.get("/batches/<batch_id>/sample")
    def sample(batch_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.READ)
        batch = _owned(batch_id, who, Action.READ)
        link = f"/api/v1/batches/{batch.id}/sample"
        return jsonify({"batch": batch.id, "specimens": [
            {"line": line, "pdf": f"{link}/{line}.pdf"}
            for line in sample_lines(db(), batch)]})

    @bp.get("/batches/<batch_id>/sample/<int:line>.pdf")
    def specimen_pdf(batch_id: str, line: int) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.READ)
        session = db()
        try:
            batch = _owned(batch_id, who, Action.READ, lock=True)
            pdf = specimen(session, runtime().renderer, runtime().settings, batch, line,
                           who.actor)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return _download(Response(pdf, mimetype="application/pdf"),
                         f"batch-{batch.id}-line-{line}-specimen.pdf", disposition="inline")

    @bp.post("/batches/<batch_id>/retry")
    def retry_failed(batch_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.RETRY)
        batch = _owned(batch_id, who, Action.RETRY)
        ids = retry_failed_rows(db(), batch, who.actor)  # committed, one by one
        runtime().dispatcher.enqueue_issues(ids)
        db().refresh(batch)
        return jsonify({**batch_view(batch), "retried": len(ids)})

    @bp.post("/batches/<batch_id>/approve")
    def approve(batch_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.APPROVE)
        batch = _decided(batch_id, who, Action.APPROVE,
                         lambda b: approve_batch(db(), b, who.actor))
        runtime().dispatcher.enqueue_batch(batch.id)  # after the commit
        db().refresh(batch)
        return jsonify(batch_view(batch))

    @bp.post("/batches/<batch_id>/reject")
    def reject(batch_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.REJECT)
        reason = reason_of(_optional_body())
        return jsonify(batch_view(_decided(batch_id, who, Action.REJECT,
                                           lambda b: reject_batch(db(), b, who.actor, reason))))

    return bp


def _upload_of_request() -> Upload:
    """The file and its settings from the request; the body may be up to max_batch_bytes."""
    request.max_content_length = runtime().settings.max_batch_bytes + 1
    if request.mimetype == "multipart/form-data":
        sent = request.files.get("file")
        if sent is None:
            raise ValidationFailed([FieldError("file", "required", "send the file as the "
                                               "`file` field of the form")])
        data, name, media = sent.read(), sent.filename or "upload", sent.mimetype
        fields: Any = request.form
    else:
        data = request.get_data(cache=False)
        name, media, fields = "upload", request.mimetype, {}
    if len(data) > runtime().settings.max_batch_bytes:
        raise RequestEntityTooLarge()
    file_format = format_of(name, media)
    if file_format is None:
        raise UnsupportedMedia("send the batch as text/csv or application/x-ndjson (JSON "
                               "Lines), or a .csv or .jsonl file in a multipart form")
    errors: list[FieldError] = []  # an empty `type` is no type (required)
    kind = batch_type().parse(request.args.get("type") or fields.get("type") or None, errors)
    if kind is None:
        raise ValidationFailed(errors)
    return Upload(data=data, file_format=file_format, cert_type=kind,
                  mode=request.args.get("mode") or fields.get("mode") or "valid_rows",
                  file_name=name, idempotency_key=request.headers.get("Idempotency-Key"))


def batch_view(batch: Batch) -> BatchView:
    """A batch as its department sees it: what was sent, its state and progress, bad rows."""
    link = f"/api/v1/batches/{batch.id}"
    return {
        "id": batch.id, "type": batch.cert_type, "state": batch.state, "mode": batch.mode,
        "file_name": batch.file_name, "sha256": batch.content_sha256,
        "rows": {"total": batch.total_rows, "valid": batch.valid_rows,
                 "invalid": len(batch.row_errors)},
        "progress": progress(db(), batch),
        "uploaded_by": batch.uploaded_by, "sample_seen_by": batch.sample_seen_by,
        "decided_by": batch.decided_by,
        "decision_reason": batch.decision_reason,
        "row_errors": cast(list[RowError], batch.row_errors[:100]),
        "links": {"self": link, "report": f"{link}/report.csv",
                  "sample": f"{link}/sample", "approve": f"{link}/approve",
                  "certificates": f"{link}/certificates.zip"},
    }


def _owned(batch_id: str, who: Principal, action: Action, lock: bool = False) -> Batch:
    try:
        uuid.UUID(batch_id)
    except ValueError:
        raise NotFound(f"no batch {batch_id}") from None
    batch = db().get(Batch, batch_id, with_for_update=lock)
    if batch is None:
        raise NotFound(f"no batch {batch_id}")
    if batch.department_id != who.department.id:
        deny(runtime().sessions, who, action, "other_department", batch=batch_id)
        raise NotFound(f"no batch {batch_id}")  # its existence does not leak
    return batch


def _decided(batch_id: str, who: Principal, action: Action, change: Any) -> Batch:
    session = db()
    try:
        batch = _owned(batch_id, who, action, lock=True)
        change(batch)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return batch


def _download(response: Response, name: str, disposition: str = "attachment") -> Response:
    response.headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
    return response


def _csv_lines(rows: Iterator[list[str]] | Any) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
