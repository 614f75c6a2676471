"""The `pramaan` command: set up, serve, issue, verify and run workers without HTTP."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import re
import secrets
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from issuer.errors import NotFound, PramaanError, ValidationFailed
from issuer.log_redaction import install as redact_logs
from issuer.models import Certificate, Department
from issuer.runtime import Runtime
from issuer.settings import Settings
from signing.errors import SigningError


def _runtime() -> Runtime:
    return Runtime(Settings.from_env())


def cmd_init(args: argparse.Namespace) -> int:
    from issuer.bootstrap import initialise

    rt = _runtime()
    report = initialise(rt, dev_pki=True if args.dev_pki else None)
    print(f"keys:     {rt.settings.keys_dir} ({'generated' if report.created_pki else 'kept'})")
    print(f"database: {_safe_url(rt.settings.database_url)} (migrated)")
    print(f"store:    {rt.settings.store_location}")
    if report.clerk_token or report.admin_token:
        print("\nAPI tokens for the development department (shown once, keep them):")
        if report.clerk_token:
            print(f"  clerk (submits certificates):    {report.clerk_token}")
        if report.admin_token:
            print(f"  admin (manages users and tokens): {report.admin_token}")
        print()
    else:
        print("tokens: already created earlier (`pramaan token create` makes another)")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """`pramaan token create|list|revoke`; bare `pramaan token [--name N] [--role R]` is the
    deprecated form of `create` (dev department, generated name)."""
    if args.verb == "list":
        return _token_list(args)
    if args.verb == "revoke":
        return _token_revoke(args)
    if args.verb is None:
        print("pramaan token: deprecated form; use `pramaan token create --department CODE "
              "--role ROLE --name NAME`", file=sys.stderr)
    return _token_create(args)


def _token_create(args: argparse.Namespace) -> int:
    from issuer.bootstrap import DEV_DEPARTMENT
    from issuer.tokens import DEFAULT_EXPIRES_DAYS, create_token, describe, find_token

    rt = _runtime()
    with rt.sessions() as session, session.begin():
        department = _department(session, args.department or DEV_DEPARTMENT)
        # Token names are unique per department (each is an audit actor); the deprecated form
        # makes a fresh one rather than a fixed name that only the first call could take.
        name = args.name or f"{args.role}-{secrets.token_hex(4)}"
        expires_days = DEFAULT_EXPIRES_DAYS if args.expires_days is None else args.expires_days
        token = create_token(session, department, name, args.role, expires_days=expires_days,
                             actor=_operator(args))
        row = find_token(session, department.id, name)
        assert row is not None
        view = describe(row)
    print(token)  # the only time it is shown: it is stored as a hash
    print(f"token name: {name} (audit actor {view['actor']}), role {view['role']}, expires "
          f"{view['expires_at']}", file=sys.stderr)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    from issuer.tokens import describe, list_tokens

    with _runtime().sessions() as session:
        if args.department:
            _department(session, args.department)
        rows = [describe(t) for t in list_tokens(session, args.department)]
    print(json.dumps(rows, indent=2))
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    from issuer.tokens import describe, revoke_token

    with _runtime().sessions() as session, session.begin():
        row = revoke_token(session, _department(session, args.department), args.name,
                           _operator(args))
        view = describe(row)
    print(json.dumps(view, indent=2))
    return 0


def cmd_department(args: argparse.Namespace) -> int:
    from issuer.departments import add_department, list_departments

    with _runtime().sessions() as session, session.begin():
        if args.verb == "list":
            rows = list_departments(session)
        else:
            types = [t.strip() for t in args.types.split(",")] if args.types else None
            rows = [add_department(session, args.code, args.name_en, args.name_mr,
                                   approval=args.approval, types=types, actor=_operator(args))]
        out = [{"code": d.id, "name_en": d.name_en, "name_mr": d.name_mr,
                "approval": d.approval, "types": d.cert_types} for d in rows]
    if args.verb == "add" and args.approval == "automatic":
        print(f"note: every request of {args.code} is approved on submission, with no second "
              "person (development only)", file=sys.stderr)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    from issuer.users import add_user, describe, disable_user, list_users, require_user

    password = ""
    if args.verb == "add":
        typed = _new_password(args)
        if typed is None:
            return 2
        password = typed
    with _runtime().sessions() as session, session.begin():
        if args.verb == "list":
            if args.department:
                _department(session, args.department)
            out: object = [describe(u) for u in list_users(session, args.department)]
        elif args.verb == "disable":
            out = describe(disable_user(session, require_user(session, args.username),
                                        _operator(args)))
        else:
            out = describe(add_user(session, _department(session, args.department),
                                    args.username, args.full_name, args.role, password,
                                    actor=_operator(args)))
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def _new_password(args: argparse.Namespace) -> str | None:
    """From one line of standard input (--password-stdin, for scripts), or typed twice."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.username}: ")
    if getpass.getpass("again: ") != first:
        print("pramaan user add: the two passwords differ", file=sys.stderr)
        return None
    return first


def _department(session: Session, code: str) -> Department:
    department = session.get(Department, code)
    if department is None:
        raise NotFound(f"no department {code} (`pramaan department list` shows them)")
    return department


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    where = f"http://{settings.host}:{settings.port}  (verify page: /v)"
    if args.debug:
        # Werkzeug's development server: a thread per connection and no timeouts. Never in
        # production; without --debug we serve with gunicorn.
        from werkzeug.serving import run_simple

        from api import create_app

        app = create_app(settings)  # raises on bad keys before anything is served
        print(f"Pramaan (development server) on {where}")
        run_simple(settings.host, settings.port, app, threaded=True, use_reloader=False)
        return 0
    from issuer.log_format import configure as configure_logs
    from web_server import serve

    configure_logs(settings.logs_as_json)  # in production one JSON object a line, this too
    logging.getLogger("pramaan.serve").info(
        "Pramaan on %s; gunicorn, %d worker(s) x %d thread(s), %d s timeout", where,
        settings.web_workers, settings.web_threads, settings.web_timeout)
    serve(settings)  # checks the keys before anything is served
    return 0


def cmd_digilocker_emulator(args: argparse.Namespace) -> int:
    """A DigiLocker emulator for development (digilocker/emulator/): Werkzeug's threaded server,
    in-memory state, plain http. Partner settings come from the environment (see the README)."""
    import os

    from werkzeug.serving import run_simple

    from digilocker.emulator import EmulatorConfig, create_emulator

    # authlib refuses OAuth over plain http except on loopback; the emulator is a development
    # tool (docker compose reaches it by service name), so this process allows it.
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    config = EmulatorConfig.from_env()
    app = create_emulator(config)
    partner = config.partners[0]
    print(f"DigiLocker emulator on http://{args.host}:{args.port}/public "
          f"(client {partner.client_id}, issuer {partner.org_id}, pulls {partner.pull_doc_url}; "
          f"state: /emulator/state)", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    from issuer.bootstrap import DEV_DEPARTMENT
    from issuer.issue import issue_certificate
    from issuer.models import Department
    from issuer.submit import submit

    rt = _runtime()
    data = _read_json(Path(args.data))
    rt.keyring  # noqa: B018 - refuse bad keys before anything is recorded
    with rt.sessions() as session:
        with session.begin():
            department = session.get(Department, args.department or DEV_DEPARTMENT)
            if department is None:
                print("no such department; run `pramaan init` first", file=sys.stderr)
                return 2
            record = submit(session, department, "cli:" + (args.actor or "local"), data,
                            rt.settings)
        if record.state != "approved":
            print(json.dumps({"id": record.id, "state": record.state,
                              "note": f"department {department.id} approves by officer: the "
                                      "request waits for an officer's approval"}, indent=2))
            return 0
        try:
            issue_certificate(rt, record.id)
        except Exception as exc:  # noqa: BLE001 - reported, not swallowed; the record waits for sweep
            print(f"pramaan issue: certificate {record.id} is recorded (approved) but issuing "
                  f"failed: {type(exc).__name__}: {exc}. Fix the cause, then run "
                  "`pramaan sweep --older-than 0`.", file=sys.stderr)
            return 1
        issued = session.get(Certificate, record.id, populate_existing=True)
        assert issued is not None and issued.pdf_path and issued.pdf_sha256
        pdf = rt.store.get(issued.pdf_path, issued.pdf_sha256)
    if args.out:
        Path(args.out).write_bytes(pdf)
    print(json.dumps({"id": issued.id, "number": issued.number, "state": issued.state,
                      "pdf_sha256": issued.pdf_sha256, "out": args.out}, indent=2))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    if args.published is not None:
        return _verify_published(args)
    rt = _runtime()
    try:
        return _verify(rt, args)
    finally:
        rt.close()  # the database pool: callers may run it in-process, many times


def _verify(rt: Runtime, args: argparse.Namespace) -> int:
    from issuer.verify import verify_pdf, verify_qr

    if args.qr is not None:
        verdict = verify_qr(rt, args.qr)
    elif args.image is not None:
        from issuer.scan import ImageUnreadable, scan_image

        try:
            scanned = scan_image(Path(args.image))
        except ImageUnreadable as exc:
            print(f"pramaan verify: {exc}", file=sys.stderr)
            return 2
        if not scanned.texts:
            print(json.dumps({"genuine": False, "status": "invalid",
                              "reason": "image: no QR code found"}, indent=2))
            return 1
        verdict = verify_qr(rt, scanned.texts[0])
        print(f"read with {scanned.decoder}", file=sys.stderr)
    elif args.pdf is not None:
        try:
            pdf = Path(args.pdf).read_bytes()
        except OSError as exc:
            print(f"pramaan verify: cannot read {args.pdf}: {exc.strerror}", file=sys.stderr)
            return 2
        verdict = verify_pdf(rt, pdf, at=args.at)
    else:
        print("give a PDF file, --qr TEXT or --image FILE", file=sys.stderr)
        return 2
    print(json.dumps(verdict.as_dict(), indent=2, ensure_ascii=False, default=str))
    return 0 if verdict.current else 1


def _verify_published(args: argparse.Namespace) -> int:
    """`verify --qr TEXT --published SOURCE`: as a verifier without our database does it."""
    from cryptography.x509.oid import NameOID

    from issuer.offline_verify import PublishedUnavailable, fetch_published, verify_with_published
    from signing.config import SignerConfig
    from signing.file_backend import load_pem_certificate, load_pem_certificates

    if args.qr is None:
        print("--published checks a seal: give --qr TEXT", file=sys.stderr)
        return 2
    keys = SignerConfig.from_keys_dir(Settings.from_env().keys_dir)
    try:
        roots = [c for path in (args.root or keys.trust_root_paths)
                 for c in load_pem_certificates(Path(path), "trust root")]
        organisation = args.organisation or str(load_pem_certificate(
            keys.seal_cert_path, "seal certificate").subject.get_attributes_for_oid(
            NameOID.ORGANIZATION_NAME)[0].value)
        published = fetch_published(args.published)
    except (PublishedUnavailable, SigningError, IndexError) as exc:
        print(f"pramaan verify: {exc}", file=sys.stderr)
        return 2
    if args.keep:
        folder = Path(args.keep)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "trust-list.json").write_bytes(published.trust_list)
        (folder / "status-list.json").write_bytes(published.status_list)
    verdict = verify_with_published(args.qr, published, roots=roots, organisation=organisation)
    print(json.dumps(verdict, indent=2, ensure_ascii=False))
    return 0 if verdict["current"] else 1


def cmd_ltv(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from issuer.ltv import refresh

    rt = _runtime()
    try:
        report = refresh(rt, horizon=timedelta(days=args.horizon_days))
    finally:
        rt.close()
    print(json.dumps({"refreshed": report.refreshed, "failed": report.failed,
                      "skipped": len(report.skipped),
                      "why_skipped": sorted(set(report.skipped.values()))}, indent=2))
    return 1 if report.failed else 0


def cmd_publish(_args: argparse.Namespace) -> int:
    from issuer import published

    rt = _runtime()
    try:
        with rt.sessions() as session:
            published.publish(rt, session)
            session.commit()
        for name in (published.TRUST_LIST, published.STATUS_LIST):
            print(f"published {published.url_of(rt, name)}")
    finally:
        rt.close()
    return 0


def _day_in_india(text: str) -> datetime:
    from issuer.fields import IST

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):  # fromisoformat takes week dates too
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time(0, 0), IST)


def cmd_worker(args: argparse.Namespace) -> int:
    from issuer.jobs import DEFAULT_RTS_EVERY_MINUTES
    from worker import run_worker, run_workers, worker_shape

    every = DEFAULT_RTS_EVERY_MINUTES if args.rts_every is None else args.rts_every
    try:
        processes, threads = worker_shape(args.processes, args.threads)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if processes > 1:
        return run_workers(processes, burst=args.burst, rts_every_minutes=every,
                           threads=threads, metrics_port=args.metrics_port,
                           metrics_host=args.metrics_host)
    run_worker(burst=args.burst, rts_every_minutes=every, threads=threads,
               metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    return 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    from issuer.migrate import upgrade

    upgrade(_runtime().engine)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from issuer.sweep import sweep

    rt = _runtime()
    count = sweep(rt, older_than_seconds=args.older_than)
    print(f"re-enqueued {count} certificate(s)")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from issuer.recovery import retry

    rt = _runtime()
    if rt.settings.jobs_inline:
        rt.keyring  # noqa: B018 - this process issues it: refuse bad keys before anything
    with rt.sessions() as session, session.begin():
        record = retry(session, args.id, _operator(args))
    rt.dispatcher.enqueue_issue(record.id)  # after commit; inline mode issues it now
    with rt.sessions() as session:
        after = session.get(Certificate, record.id)
        assert after is not None
        print(json.dumps({"id": after.id, "number": after.number, "state": after.state,
                          "attempts": after.attempts, "last_error": after.last_error},
                         indent=2, ensure_ascii=False))
    return 0 if after.state != "failed" else 1


def cmd_cancel(args: argparse.Namespace) -> int:
    from issuer.recovery import cancel

    rt = _runtime()
    with rt.sessions() as session, session.begin():
        record = cancel(session, args.id, _operator(args), args.reason)
        print(json.dumps({"id": record.id, "number": record.number, "state": record.state},
                         indent=2))
    return 0


def cmd_digilocker(args: argparse.Namespace) -> int:
    """`pramaan digilocker status [ID] | retry [ID] | unlink DIGILOCKERID`."""
    from digilocker import deliveries, link

    rt = _runtime()
    if args.verb == "unlink":
        print(json.dumps(link.unlink(rt, args.digilockerid, _operator(args)), indent=2))
        return 0
    if args.verb == "retry" and args.due:
        deliveries.sweep_due(rt)  # what a worker's sweep does: for cron without Redis workers
    elif args.verb == "retry":
        with rt.sessions() as session, session.begin():
            ids = deliveries.retry(session, args.id, _operator(args))
        for delivery_id in ids:  # after commit; inline mode pushes them now
            rt.dispatcher.enqueue_delivery(delivery_id)
    with rt.sessions() as session:
        report = deliveries.status(session, args.id)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 1 if args.verb == "retry" and report["counts"]["failed"] else 0


def _operator(args: argparse.Namespace) -> str:
    return "cli:" + (args.actor or getpass.getuser())


def cmd_audit(_args: argparse.Namespace) -> int:
    from issuer.audit import verify_chain

    rt = _runtime()
    with rt.sessions() as session:
        report = verify_chain(session)
    print(json.dumps({"ok": report.ok, "events": report.events, "broken_at": report.broken_at}))
    return 0 if report.ok else 1


def cmd_ward(args: argparse.Namespace) -> int:
    from issuer import wards

    rt = _runtime()
    try:
        with rt.sessions() as session, session.begin():
            if args.verb == "list":
                if args.department:
                    wards.require_department(session, args.department)
                rows = wards.list_offices(session, args.department)
            elif args.verb == "add":
                rows = [wards.add_office(session, args.department, args.code, args.name_en,
                                         args.name_mr, _officer_options(args),
                                         actor=_operator(args))]
            else:
                department = args.department or wards.office_department(session, args.code)
                rows = [wards.set_officers(session, department, args.code,
                                           _officer_options(args), actor=_operator(args))]
            out = [wards.office_view(office) for office in rows]
    finally:
        rt.close()  # the database pool: callers may run it in-process, many times
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def _officer_options(args: argparse.Namespace) -> dict[str, str | None]:
    """The officers named on the command line (an empty name clears one)."""
    given = {"designated_officer": args.officer, "first_appellate": args.first_appellate,
             "second_appellate": args.second_appellate}
    return {field: name for field, name in given.items() if name is not None}


def cmd_rts(args: argparse.Namespace) -> int:
    rt = _runtime()
    try:
        return _rts(rt, args)
    finally:
        rt.close()  # the database pool: callers may run it in-process, many times


def _rts(rt: Runtime, args: argparse.Namespace) -> int:
    from issuer.db import utcnow
    from issuer.rts_calendar import load_calendar

    calendar = load_calendar(rt.settings)
    if args.verb == "escalate":
        from dataclasses import asdict
        from datetime import timedelta

        from issuer.rts_escalation import escalate_all

        if args.second_after_days < 0:
            print("pramaan rts escalate: --second-after-days is never negative", file=sys.stderr)
            return 2
        done = escalate_all(rt.sessions, calendar, utcnow(),
                            timedelta(days=args.second_after_days),
                            department_id=args.department)
        print(json.dumps([asdict(e) for e in done], indent=2, ensure_ascii=False))
        return 0
    from issuer.rts import rts_report
    from issuer.wards import require_department

    with rt.sessions() as session:
        if args.department:
            require_department(session, args.department)
        report = rts_report(session, calendar, utcnow(), department_id=args.department,
                            ward=args.ward.upper() if args.ward else None,
                            due_within=args.due_within)
    _print_rts(report, args.csv)
    return 0


def _print_rts(report: Any, as_csv: bool) -> None:
    from issuer.rts import CSV_COLUMNS, csv_rows, text_table

    if not as_csv:
        print(text_table(report))
        return
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(report))


def _read_json(path: Path) -> Any:
    from issuer.fields import parse_json

    try:
        return parse_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read {path}: {exc}") from None
    except RecursionError:
        raise SystemExit(f"cannot read {path}: nested too deeply") from None


def _safe_url(url: str) -> str:
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pramaan", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="dev PKI, database, dev department and token (idempotent)")
    init.add_argument("--dev-pki", action="store_true",
                      help="generate a development PKI even for an https verify URL")
    sub.add_parser("migrate", help="bring the database schema up to date")
    _department_parser(sub)
    _token_parser(sub)
    _user_parser(sub)
    sv = sub.add_parser("serve", help="serve the API on HOST:PORT (default 127.0.0.1:8000)")
    sv.add_argument("--debug", action="store_true",
                    help="Werkzeug's development server instead of gunicorn (never in production)")
    emu = sub.add_parser("digilocker-emulator",
                         help="run the DigiLocker emulator (development and tests only)")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8200)
    i = sub.add_parser("issue", help="issue one certificate synchronously")
    i.add_argument("--data", required=True, help="request JSON file")
    i.add_argument("--out", help="write the signed PDF here")
    i.add_argument("--department")
    i.add_argument("--actor")
    v = sub.add_parser("verify", help="verify a PDF, a scanned QR text or a photo of the QR")
    v.add_argument("pdf", nargs="?")
    v.add_argument("--qr")
    v.add_argument("--image")
    v.add_argument("--at", type=_day_in_india, metavar="YYYY-MM-DD",
                   help="validate the PDF's signature as of that day (00:00 in India), offline: "
                   "how long will this certificate's signature stay valid?")
    v.add_argument("--published", metavar="URL|DIR",
                   help="check --qr as an outside verifier: against the signed trust list and "
                   "status list the issuer publishes (its base URL, or a folder kept with "
                   "--keep), without the database")
    v.add_argument("--root", action="append", metavar="PEM",
                   help="with --published: the trust root (default: keys/root.crt)")
    v.add_argument("--organisation", help="with --published: the issuer's organisation as "
                   "its certificates name it (default: that of keys/seal.crt)")
    v.add_argument("--keep", metavar="DIR",
                   help="with --published: keep the fetched documents here for offline use")
    sub.add_parser("publish", help="sign the trust list and status list now (workers do it "
                   "every minute)")
    ltv = sub.add_parser("ltv", help="long-term validation upkeep of B-LTA certificates")
    ltv_sub = ltv.add_subparsers(dest="ltv_command", required=True)
    ltv_refresh = ltv_sub.add_parser(
        "refresh", help="add an archival timestamp to every B-LTA certificate whose newest "
        "timestamp's TSA certificate expires within the horizon (workers do it daily; audited)")
    ltv_refresh.add_argument("--horizon-days", type=int, default=365,
                             help="how far ahead an expiry counts (default 365)")
    w = sub.add_parser("worker", help="run an RQ worker (needs REDIS_URL)")
    w.add_argument("--burst", action="store_true")
    w.add_argument("--rts-every", type=int, metavar="MINUTES",
                   help="run the RTS escalation at most every MINUTES across all workers "
                   "(default 15; 0: off)")
    w.add_argument("--processes", type=int, metavar="N",
                   help="worker processes side by side (default 1, or "
                   "$PRAMAAN_WORKER_PROCESSES)")
    w.add_argument("--threads", type=int, metavar="N",
                   help="workers in threads of each process, so several documents are in "
                   "flight while one waits for the TSA (default 1, or $PRAMAAN_WORKER_THREADS)")
    w.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve the render and sign histograms for Prometheus on PORT")
    w.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                   help="the address to serve them on (default 127.0.0.1)")
    s = sub.add_parser("sweep", help="re-enqueue certificates stuck approved or signing")
    s.add_argument("--older-than", type=int, default=300, help="seconds (default 300)")
    r = sub.add_parser("retry", help="retry a failed certificate (after fixing the cause)")
    r.add_argument("id")
    r.add_argument("--actor", help="operator name for the audit log (default: login name)")
    c = sub.add_parser("cancel", help="cancel a certificate that is not issued (for good)")
    c.add_argument("id")
    c.add_argument("--reason", required=True)
    c.add_argument("--actor", help="operator name for the audit log (default: login name)")
    sub.add_parser("audit-verify", help="recompute the audit hash chain")
    st = sub.add_parser("store", help="the store of signed PDFs: migrate it to another")
    stsub = st.add_subparsers(dest="store_command", required=True)
    stm = stsub.add_parser("migrate", help="copy every stored PDF to another store, checking "
                           "every hash; safe to run again after an interruption")
    stm.add_argument("--to", required=True, metavar="URL",
                     help="the target: s3://bucket/prefix (AWS_* settings from the "
                     "environment) or file:///path")
    stm.add_argument("--from", dest="source", metavar="URL",
                     help="the source (default: this service's store, PRAMAAN_STORE_URL)")
    _ward_parser(sub)
    keys = sub.add_parser("keys", help="the signing keys: make a development set, check them")
    ksub = keys.add_subparsers(dest="verb", required=True)
    ksub.add_parser("init", help="generate the development PKI into PRAMAAN_KEYS_DIR "
                    "(development only; idempotent)")
    kcheck = ksub.add_parser("check", help="check keys, certificates, chain, expiry and the "
                             "TSA; exit 1 on any problem")
    kcheck.add_argument("--days", type=int, default=30,
                        help="a certificate expiring within this many days is a problem "
                        "(default 30)")
    krotate = ksub.add_parser("rotate", help="stage a new seal key and document-signer "
                              "certificate taking over at --at (audited); the old seal "
                              "certificate stays trusted; refused while one is staged")
    krotate.add_argument("--at", type=_moment, metavar="ISO-TIME",
                         help="when the new keys start signing, e.g. 2027-01-01T00:00+05:30 "
                         "(default: now)")
    krotate.add_argument("--from", dest="source", metavar="DIR",
                         help="the new signer.key, signer.crt, seal.key and seal.crt (from your "
                         "CA); default: made by the development CA")
    krotate.add_argument("--actor", help="operator name for the audit log (default: login name)")
    kpromote = ksub.add_parser("promote", help="after a staged rotation's moment: make its keys "
                               "the current ones and retire the old (audited)")
    kpromote.add_argument("--actor", help="operator name for the audit log (default: login "
                          "name)")
    _rts_parser(sub)
    _digilocker_parser(sub)
    doctor = sub.add_parser("doctor", help="check configuration, database, Redis, keys, TSA "
                            "and DigiLocker; one line each; exit 1 on any problem")
    doctor.add_argument("--json", action="store_true", help="the checks as JSON, for machines")
    doctor.add_argument("--days", type=int, default=30,
                        help="a certificate expiring within this many days is a problem "
                        "(default 30)")
    return p


def _digilocker_parser(sub: Any) -> None:
    dl = sub.add_parser("digilocker", help="DigiLocker pushes and linked accounts: status, "
                        "retry, unlink")
    dsub = dl.add_subparsers(dest="verb", required=True)
    status = dsub.add_parser("status", help="pushes by state; those not delivered (or one "
                             "certificate's)")
    status.add_argument("id", nargs="?", help="a certificate id")
    retry = dsub.add_parser("retry", help="try pending and failed pushes now (all, or one "
                            "certificate's; audited)")
    retry.add_argument("id", nargs="?", help="a certificate id")
    retry.add_argument("--due", action="store_true", help="only pending pushes whose next try "
                       "is due, changing nothing (cron, when no Redis worker sweeps)")
    retry.add_argument("--actor", help="operator name for the audit log (default: login name)")
    unlink = dsub.add_parser("unlink", help="forget a linked account's tokens (revoked at "
                             "DigiLocker too); its pending additions stop (audited)")
    unlink.add_argument("digilockerid")
    unlink.add_argument("--actor", help="operator name for the audit log (default: login name)")


def _department_parser(sub: Any) -> None:
    from issuer.departments import APPROVAL_RULES

    d = sub.add_parser("department", help="departments: add, list")
    dsub = d.add_subparsers(dest="verb", required=True)
    add = dsub.add_parser("add", help="a new department (audited)")
    add.add_argument("code", help="lower-case letters, digits and '-', e.g. pmc-ward-aundh")
    add.add_argument("--name-en", required=True)
    add.add_argument("--name-mr", required=True)
    add.add_argument("--approval", required=True, choices=APPROVAL_RULES,
                     help="officer: a second person approves each request (maker-checker); "
                     "automatic: development only")
    add.add_argument("--types", help="comma-separated certificate types (default: all)")
    add.add_argument("--actor", help="operator name for the audit log (default: login name)")
    dsub.add_parser("list", help="every department")


def _token_parser(sub: Any) -> None:
    from issuer.tokens import ROLES

    t = sub.add_parser("token", help="API tokens: create (printed once), list, revoke")
    # The deprecated form, `pramaan token [--name N] [--role R] [--department D]`.
    t.add_argument("--name", help=argparse.SUPPRESS)
    t.add_argument("--role", default="admin", choices=ROLES, help=argparse.SUPPRESS)
    t.add_argument("--department", help=argparse.SUPPRESS)
    t.set_defaults(expires_days=None, actor=None)
    tsub = t.add_subparsers(dest="verb")
    create = tsub.add_parser("create", help="a new token, printed once (audited)")
    create.add_argument("--department", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True,
                        help="unique in the department; it names the audit actor")
    create.add_argument("--expires-days", type=int, help="default 365")
    create.add_argument("--actor", help="operator name for the audit log (default: login name)")
    listing = tsub.add_parser("list", help="tokens and their state (never the secrets)")
    listing.add_argument("--department")
    revoke = tsub.add_parser("revoke", help="revoke a token for good (audited)")
    revoke.add_argument("--department", required=True)
    revoke.add_argument("--name", required=True)
    revoke.add_argument("--actor", help="operator name for the audit log (default: login name)")


def _user_parser(sub: Any) -> None:
    from issuer.tokens import ROLES

    u = sub.add_parser("user", help="people's accounts: add, list, disable")
    usub = u.add_subparsers(dest="verb", required=True)
    add = usub.add_parser("add", help="a new account (audited); the password is asked for")
    add.add_argument("username")
    add.add_argument("--department", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--full-name", required=True)
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from one line of standard input (scripts)")
    add.add_argument("--actor", help="operator name for the audit log (default: login name)")
    listing = usub.add_parser("list", help="accounts (never their passwords)")
    listing.add_argument("--department")
    disable = usub.add_parser("disable", help="disable an account for good (audited)")
    disable.add_argument("username")
    disable.add_argument("--actor", help="operator name for the audit log (default: login name)")


def cmd_keys(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from issuer.runtime import signer_config

    settings = Settings.from_env()
    if args.verb == "init":
        from signing.devpki import ensure_dev_pki

        if not settings.development:
            print("pramaan keys init: development keys are never made in production "
                  "(PRAMAAN_ENV=production)", file=sys.stderr)
            return 2
        made = ensure_dev_pki(settings.keys_dir, ocsp_url=settings.dev_ocsp_url)
        print(f"development PKI in {made.keys_dir}")
        return 0
    if args.verb in ("rotate", "promote"):
        return _rotate(settings, args)
    from signing.key_check import check_keys

    config = signer_config(settings)
    checks = check_keys(config, margin=timedelta(days=args.days))
    for check in checks:
        print(f"{'ok ' if check.ok else 'BAD'}  {check.name}: {check.detail}")
    return 0 if all(check.ok for check in checks) else 1


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone (Z or +05:30)")
    return moment


def _rotate(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC

    from issuer import audit
    from issuer.runtime import signer_config
    from signing import rotation
    from signing.trust_list import kid_for

    rt = Runtime(settings)
    try:
        with rt.sessions() as session:  # the audit log must be writable before keys move
            session.execute(text("SELECT 1"))
        if args.verb == "promote":
            staged = rotation.pending(settings.keys_dir)
            if staged is None or not rotation.promote(
                    settings.keys_dir, config=signer_config(settings),
                    verify_base_url=settings.verify_base_url):
                when = ("no rotation is staged" if staged is None else
                        f"the staged keys sign from {staged.activate_at:%Y-%m-%d %H:%M:%S} UTC")
                print(f"nothing to promote: {when}")
                return 1
            action, what = "keys_promote", {"activate_at": staged.activate_at.isoformat()}
            message = ("the staged keys are the current ones now; the old seal certificate is "
                       "kept in keys/seal-retired/ (verify-only), the old private keys are gone")
        else:
            staged = rotation.stage(settings.keys_dir, args.at or datetime.now(UTC),
                                    Path(args.source) if args.source else None,
                                    config=signer_config(settings),
                                    verify_base_url=settings.verify_base_url)
            action = "keys_rotate"
            what = {"activate_at": staged.activate_at.isoformat(), **{
                f"{kind}_kid": kid_for(_der(staged.directory / f"{kind}.crt")).hex()
                for kind in ("seal", "signer")}}
            message = (f"new keys staged in {staged.directory}: they sign from "
                       f"{staged.activate_at:%Y-%m-%d %H:%M:%S} UTC (seal kid "
                       f"{what['seal_kid']}). Restart the web processes and the workers now: "
                       "each then trusts the new seal and switches on time. After that moment, "
                       "`pramaan keys promote` retires the old keys for good")
        with rt.sessions() as session, session.begin():
            audit.record(session, actor=_operator(args), action=action, details=what)
        print(message)
        return 0
    finally:
        rt.close()


def _der(path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(
        serialization.Encoding.DER)


def _ward_parser(sub: Any) -> None:
    wd = sub.add_parser("ward", help="ward offices and their RTS officers: add, list, set")
    wsub = wd.add_subparsers(dest="verb", required=True)
    add = wsub.add_parser("add", help="a new ward office of a department (audited)")
    add.add_argument("code", help="upper-case letters, digits and '-', e.g. KB")
    add.add_argument("--department", required=True)
    add.add_argument("--name-en", required=True,
                     help="as requests name the office (matched without regard to case)")
    add.add_argument("--name-mr", required=True)
    change = wsub.add_parser("set", help="change an office's RTS officers (audited)")
    change.add_argument("code")
    change.add_argument("--department", help="needed when two departments use the code")
    for parser_ in (add, change):
        parser_.add_argument("--officer", help="the designated officer ('' clears it)")
        parser_.add_argument("--first-appellate", help="the first appellate officer")
        parser_.add_argument("--second-appellate", help="the second appellate officer")
        parser_.add_argument("--actor", help="operator name for the audit log "
                             "(default: login name)")
    listing = wsub.add_parser("list", help="ward offices and their officers")
    listing.add_argument("--department")


def _rts_parser(sub: Any) -> None:
    rts = sub.add_parser("rts", help="Right to Public Services: report, escalate")
    rsub = rts.add_subparsers(dest="verb", required=True)
    report = rsub.add_parser("report", help="requests due soon or overdue, per ward office "
                             "and designated officer")
    report.add_argument("--department", help="default: every department")
    report.add_argument("--ward", help="one ward office code")
    report.add_argument("--due-within", type=int, default=2, choices=range(0, 61),
                        metavar="DAYS", help="working days ahead (0-60, default 2)")
    report.add_argument("--csv", action="store_true", help="CSV with a header row")
    escalate = rsub.add_parser("escalate", help="escalate overdue requests to the appellate "
                               "officers (idempotent; for cron)")
    escalate.add_argument("--department", help="default: every department")
    escalate.add_argument("--second-after-days", type=int, default=30, metavar="DAYS",
                          help="days after the first escalation before the second "
                          "(default 30: the first appellate officer's time to decide)")
    bulk = sub.add_parser(
        "bulk", help="send a batch file (CSV or JSON Lines) to the service and follow it; "
        "PRAMAAN_API_TOKEN holds the department's token",
        description="pramaan bulk FILE --type T [--wait]: upload (a clerk's token); "
        "pramaan bulk BATCH-ID [--wait]: its state; pramaan bulk BATCH-ID --approve: approve "
        "it as a whole (an officer's token, not the uploader's)")
    bulk.add_argument("target", help="a .csv or .jsonl file, or a batch id")
    bulk.add_argument("--type", dest="cert_type", help="the certificate type of every row")
    bulk.add_argument("--mode", choices=("valid_rows", "all_or_nothing"), default="valid_rows",
                      help="issue the valid rows (default), or nothing unless all are valid")
    bulk.add_argument("--wait", action="store_true",
                      help="follow with a progress bar until every row is issued or failed")
    bulk.add_argument("--sample", metavar="DIR", default=None,
                      help="save specimens of rows spread through batch BATCH-ID (rendered, "
                      "unsigned PDFs) into DIR, to look at before approving it")
    bulk.add_argument("--approve", action="store_true",
                      help="approve the batch BATCH-ID (after opening its --sample)")
    bulk.add_argument("--url", default=None,
                      help="the service (default: PRAMAAN_API_URL, else http://127.0.0.1:8000)")


def cmd_bulk(args: argparse.Namespace) -> int:
    from rich.console import Console

    from issuer import bulk_client as bulk

    console = Console(stderr=True)
    url = args.url or os.environ.get("PRAMAAN_API_URL") or "http://127.0.0.1:8000"
    try:
        client = bulk.Client.connect(url, os.environ)
        path = Path(args.target)
        if path.suffix.lower() in bulk.MEDIA:
            if not args.cert_type:
                raise bulk.BulkError("--type names the certificate type of the rows")
            batch = bulk.upload(client, path, args.cert_type, args.mode)
        elif args.sample is not None and args.approve:
            raise bulk.BulkError("look at the sample first (--sample DIR), then approve")
        elif args.sample is not None:
            for written in bulk.save_sample(client, args.target, Path(args.sample)):
                print(f"specimen: {written}")
            _, batch = client.call("GET", f"/api/v1/batches/{args.target}")
        elif args.approve:
            batch = bulk.approve(client, args.target)
        else:
            _, batch = client.call("GET", f"/api/v1/batches/{args.target}")
        if args.wait:
            batch = bulk.follow(client, batch["id"], console)
    except bulk.BulkError as exc:
        print(f"pramaan bulk: {exc}", file=sys.stderr)
        return 2
    print(bulk.summary(batch))
    if args.sample is not None and not args.wait:
        return 0  # the specimens were saved: what was asked
    return 1 if batch["state"] in bulk.ENDED or batch["progress"]["failed"] else 0


def cmd_store(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from issuer.storage import open_store
    from issuer.store_migrate import migrate

    settings = Settings.from_env()
    source = open_store(args.source or settings.store_location)
    target = open_store(args.to)
    if source.url == target.url:
        print(f"pramaan store migrate: {args.to} is the store itself", file=sys.stderr)
        return 2
    total = sum(1 for _ in source.keys())
    print(f"from {source.url}\nto   {target.url}\n{total} objects")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True) as bar:
        task = bar.add_task("copying and checking", total=total)
        done = migrate(source, target, lambda _key, _outcome: bar.advance(task))
    print(f"{done.copied} copied, {done.already_there} already there, "
          f"{len(done.failed)} failed")
    for key, why in done.failed:
        print(f"failed: {key}: {why}", file=sys.stderr)
    if not done.failed:
        print(f"every object checked; set PRAMAAN_STORE_URL={target.url} to use it")
    return 1 if done.failed else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """`pramaan doctor`: every check in plain words (issuer/doctor.py); 0 only when all pass."""
    from issuer.doctor import as_json, as_text, diagnose

    checks = diagnose(days=args.days)
    print(as_json(checks) if args.json else as_text(checks))
    return 0 if all(check.ok for check in checks) else 1


COMMANDS = {
    "init": cmd_init, "migrate": cmd_migrate, "token": cmd_token, "serve": cmd_serve,
    "department": cmd_department, "user": cmd_user,
    "issue": cmd_issue, "verify": cmd_verify, "worker": cmd_worker, "sweep": cmd_sweep,
    "publish": cmd_publish, "ltv": cmd_ltv,
    "audit-verify": cmd_audit, "retry": cmd_retry, "cancel": cmd_cancel,
    "ward": cmd_ward, "rts": cmd_rts,
    "digilocker": cmd_digilocker, "keys": cmd_keys,
    "digilocker-emulator": cmd_digilocker_emulator, "bulk": cmd_bulk, "store": cmd_store,
    "doctor": cmd_doctor,
}


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    redact_logs()  # no log line carries an Aadhaar-looking number
    try:
        code = COMMANDS[args.command](args)
    except ValidationFailed as exc:
        print(json.dumps({"code": exc.code, "detail": exc.detail,
                          "errors": [e.as_dict() for e in exc.errors]}, indent=2,
                         ensure_ascii=False), file=sys.stderr)
        code = 2
    except PramaanError as exc:
        print(json.dumps({"code": exc.code, "detail": exc.detail, **exc.extra}, indent=2),
              file=sys.stderr)
        code = 2
    except SigningError as exc:
        print(f"pramaan: refusing to start: {exc} [{exc.code}]", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
