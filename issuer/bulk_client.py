"""`pramaan bulk`: send a batch file to a running service over its API, as a department's clerk
would, and (with --wait) follow it with a progress bar to the end; approve one as an officer.

It speaks HTTP only (POST /api/v1/batches, GET /api/v1/batches/<id>): the same checks, audit
and idempotency as any client. The token comes from PRAMAAN_API_TOKEN, never the command line.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import urllib3
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

TOKEN_ENV: Final = "PRAMAAN_API_TOKEN"  # noqa: S105 - the variable's name
MEDIA: Final = {".csv": "text/csv", ".jsonl": "application/x-ndjson",
                ".ndjson": "application/x-ndjson"}
ENDED: Final = ("refused", "rejected")


class BulkError(Exception):
    """The service refused, or could not be reached: the message says which and why."""


@dataclass(frozen=True)
class Client:
    """The service at `base_url`, as the holder of `token`."""

    base_url: str
    token: str
    http: urllib3.PoolManager

    @classmethod
    def connect(cls, base_url: str, env: Mapping[str, str]) -> Client:
        token = env.get(TOKEN_ENV)
        if not token:
            raise BulkError(f"set {TOKEN_ENV} to an API token of the department (a clerk's to "
                            "upload, an officer's to approve)")
        return cls(base_url.rstrip("/"), token, urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=600), retries=False))

    def download(self, path: str) -> bytes:
        """The body of a GET (a PDF), or BulkError with the service's problem."""
        try:
            response = self.http.request("GET", self.base_url + path,
                                         headers={"Authorization": f"Bearer {self.token}"})
        except urllib3.exceptions.HTTPError as exc:
            raise BulkError(f"cannot reach {self.base_url}: {exc}") from None
        if response.status >= 400:
            try:
                data = json.loads(response.data or b"{}")
            except ValueError:
                data = {"detail": response.data[:200].decode(errors="replace")}
            raise BulkError(_problem(response.status, data))
        return bytes(response.data)

    def call(self, method: str, path: str, *, body: bytes | None = None,
             headers: Mapping[str, str] | None = None,
             fields: Mapping[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        try:
            response = self.http.request(
                method, self.base_url + path, body=body, fields=fields,
                headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
        except urllib3.exceptions.HTTPError as exc:
            raise BulkError(f"cannot reach {self.base_url}: {exc}") from None
        try:
            data = json.loads(response.data or b"{}")
        except ValueError:
            data = {"detail": response.data[:200].decode(errors="replace")}
        if response.status >= 400:
            raise BulkError(_problem(response.status, data))
        return response.status, data


def upload(client: Client, path: Path, cert_type: str, mode: str) -> dict[str, Any]:
    """POST the file; the Idempotency-Key is the file's hash, so sending it twice (a retry after
    a dropped connection) gives back the same batch."""
    media = MEDIA.get(path.suffix.lower())
    if media is None:
        raise BulkError(f"{path}: a .csv or .jsonl file, please")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BulkError(f"cannot read {path}: {exc.strerror}") from None
    key = "file-" + hashlib.sha256(data).hexdigest()
    _, batch = client.call(
        "POST", f"/api/v1/batches?type={cert_type}&mode={mode}", body=data,
        headers={"Content-Type": media, "Idempotency-Key": key})
    return batch


def follow(client: Client, batch_id: str, console: Console, *, poll: float = 1.0,
           clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Show the batch's progress until every row is issued or failed (or it was refused or
    rejected); the last view of it."""
    _, batch = client.call("GET", f"/api/v1/batches/{batch_id}")
    total = batch["rows"]["total"]
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[failed]} failed"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(_stage(batch), total=total, failed=0)
        while True:
            counts = batch["progress"]
            bar.update(task, completed=counts["issued"] + counts["failed"],
                       failed=counts["failed"], description=_stage(batch))
            if batch["state"] in ENDED or counts["done"]:
                return batch
            sleep(poll)
            _, batch = client.call("GET", f"/api/v1/batches/{batch_id}")


def save_sample(client: Client, batch_id: str, directory: Path) -> list[Path]:
    """Write the specimens of the batch's sample rows (rendered, unsigned) into `directory`,
    one PDF per row, named by file line; their paths. An officer opens them before approving."""
    _, sample = client.call("GET", f"/api/v1/batches/{batch_id}/sample")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BulkError(f"cannot make {directory}: {exc.strerror}") from None
    written = []
    for shown in sample["specimens"]:
        path = directory / f"batch-{batch_id}-line-{shown['line']}-specimen.pdf"
        path.write_bytes(client.download(shown["pdf"]))
        written.append(path)
    return written


def approve(client: Client, batch_id: str) -> dict[str, Any]:
    _, batch = client.call("POST", f"/api/v1/batches/{batch_id}/approve")
    return batch


def summary(batch: dict[str, Any]) -> str:
    """One paragraph a clerk reads at the end."""
    counts, rows = batch["progress"], batch["rows"]
    lines = [f"batch {batch['id']} ({batch['type']}, {batch['file_name']}): {batch['state']}",
             f"  rows: {rows['total']} ({rows['valid']} valid, {rows['invalid']} not)",
             f"  issued {counts['issued']}, failed {counts['failed']}, pending {counts['pending']}"]
    if counts.get("rate_per_second"):
        lines.append(f"  rate: {counts['rate_per_second']} certificates/s")
    if rows["invalid"]:
        lines.append(f"  the bad rows, line by line: {batch['links']['report']}")
    if batch["state"] == "awaiting_approval":
        lines.append(f"  waiting for an officer, who looks at a sample first "
                     f"(`pramaan bulk {batch['id']} --sample DIR`), then approves "
                     f"(`pramaan bulk {batch['id']} --approve`) with an officer's token")
    return "\n".join(lines)


def _stage(batch: dict[str, Any]) -> str:
    state = str(batch["state"])
    return {"awaiting_approval": "awaiting approval", "approved": "making certificates",
            "issuing": "issuing"}.get(state, state)


def _problem(status: int, data: dict[str, Any]) -> str:
    detail = data.get("detail") or data.get("title") or "refused"
    errors = "".join(f"\n  {e.get('field')}: {e.get('message')} [{e.get('code')}]"
                     for e in data.get("errors") or [])
    return f"HTTP {status} {data.get('code', '')}: {detail}{errors}"
