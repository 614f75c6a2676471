"""A bulk batch rides out infrastructure outages in its middle: Redis restarted (with its
append-only file, and without one: everything it held lost) and PostgreSQL stopped for some
seconds, each against a private server of its own, with a real long-running worker process.
The worker lives through each outage (it waits for the service and goes on), every row ends
issued exactly once, the numbers have no gap and no repeat, no job is left failed, and the
worker's log has no traceback but of a lost connection."""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from issuer.models import AuditEvent, BatchRow, Certificate, State
from issuer.settings import Settings
from tests.conftest import IN_CI, POSTGRES_URL, ROOT, Live, _postgres_schema, make_settings, serve
from tests.test_batches import (
    as_csv,
    batch_states,
    births,
    officer_department,
    post_batch,
    wait_until,
)
from tests.test_digilocker_e2e import free_port
from tests.test_jobs import worker_env

ROWS = 40
# The TSA 300 ms away (B-T), as in test_batches' SIGKILL test: a job spends most of its time
# waiting, so the outage lands in the middle of the batch, and of a job.
SLOW_TSA = {"PRAMAAN_TSA_URL": "dev", "PRAMAAN_SIGNATURE_LEVEL": "B-T",
            "PRAMAAN_SIGNATURE_LEVELS": "", "PRAMAAN_DEV_TSA_DELAY_MS": "300"}


def binary(name: str) -> str:
    """The path of a server's program: a test fails in CI when it is missing, skips elsewhere."""
    # Debian keeps PostgreSQL's server programs out of PATH, under its version's directory.
    places = ["/usr/local/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(places))
    if found:
        return found
    message = f"{name} is not installed"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def private_dir(prefix: str) -> Path:
    # Not under pytest's tmp_path: as root that is root's alone, and PostgreSQL runs as postgres.
    return Path(tempfile.mkdtemp(prefix=prefix))


# --- private servers ---------------------------------------------------------------------

class RedisServer:
    """redis-server on a port and in a directory of its own, stopped and started at will.
    Persistent: the append-only file a deployment keeps, so the queue outlives a restart; not:
    no file at all, so a restart comes back empty (the sweeper's case)."""

    def __init__(self, directory: Path, *, persistent: bool) -> None:
        self.executable = binary("redis-server")
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()  # below the ephemeral range: still ours when we start again
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--save", "",
             "--appendonly", "yes" if self.persistent else "no",
             "--logfile", str(self.directory / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.answers, 30, f"redis-server did not start: {self.log()}")

    def answers(self) -> bool:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError
        from redis.retry import Retry

        assert self.process is not None and self.process.poll() is None, self.log()
        client = Redis(port=self.port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
        try:
            return bool(client.ping())
        except RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM, as systemd stops it: a persistent server writes its file, then exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class PostgresCluster:
    """A PostgreSQL cluster of its own (initdb) with trust authentication on 127.0.0.1,
    stopped and started with pg_ctl. As root it runs as the machine's `postgres` user: initdb
    refuses root."""

    def __init__(self, directory: Path) -> None:
        self.initdb, self.pg_ctl = binary("initdb"), binary("pg_ctl")
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.user = "postgres"
            self.as_user = ["runuser", "-u", self.user, "--"]
            owner = pwd.getpwnam(self.user)
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def run(self, *command: str) -> None:
        done = subprocess.run([*self.as_user, *command], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, f"{command[:2]}: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    def create(self, database: str) -> None:
        self.run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8",
                 "--no-sync")
        self.start()
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
        finally:
            engine.dispose()

    def start(self) -> None:
        # The socket in our own directory, not the system's. fsync off: only clean stops
        # happen here (a fast stop checkpoints first), on a machine others work on too.
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self.run(self.pg_ctl, "-D", str(self.data), "-l", str(self.directory / "pg.log"), "-o",
                 options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast`: every session is cut off, as in a restart for maintenance."""
        self.run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@pytest.fixture
def private_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    directory = private_dir("pramaan-redis-")
    server = RedisServer(directory, persistent=getattr(request, "param", False))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PostgresCluster]:
    directory = private_dir("pramaan-pg-")
    cluster = PostgresCluster(directory)
    try:
        cluster.create("pramaan")
        yield cluster
    finally:
        if cluster.running():
            cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def live_on_private_redis(tmp_path: Path, keys_dir: Path,
                          private_redis: RedisServer) -> Iterator[Live]:
    """The API on a schema of its own in the machine's PostgreSQL (conftest's), with the
    private Redis."""
    for database_url in _postgres_schema():
        yield from serve(make_settings(tmp_path, database_url, keys_dir,
                                       redis_url=private_redis.url))


@pytest.fixture
def live_on_private_postgres(tmp_path: Path, keys_dir: Path, private_postgres: PostgresCluster,
                             private_redis: RedisServer) -> Iterator[Live]:
    """The API on the private cluster, with a private Redis (not the machine's, which other
    tests empty)."""
    yield from serve(make_settings(tmp_path, private_postgres.url("pramaan"), keys_dir,
                                   redis_url=private_redis.url))


# --- the worker ----------------------------------------------------------------------------

def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """test_batches.start_worker's worker (long-running, sweeping every second, nothing stuck
    too young for it), with the slow TSA, and its stderr in a file: an outage's log can
    outgrow a pipe that nobody reads until the end, and then the worker would block on it."""
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py"), "--rts-every", "0"],
            env={**worker_env(settings), "PRAMAAN_SWEEP_SECONDS": "1",
                 "PRAMAAN_SWEEP_AFTER_SECONDS": "0", "PRAMAAN_WORKER_PROCESSES": "1",
                 "PRAMAAN_WORKER_THREADS": "1", **SLOW_TSA},
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)


def stop_worker(worker: subprocess.Popen[bytes]) -> int:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        return worker.wait()


# What a worker may log with a traceback during an outage: that the service is out of reach.
LOST_CONNECTION = re.compile(
    r"(redis\.exceptions\.(ConnectionError|TimeoutError)"
    r"|sqlalchemy\.exc\.(OperationalError|DisconnectionError)"
    r"|psycopg\.(OperationalError|errors\.(AdminShutdown|CannotConnectNow))"
    r"|ConnectionRefusedError|ConnectionResetError|BrokenPipeError)(:|$)")


def unexpected_tracebacks(log: str) -> list[str]:
    """The exception line ending each traceback in `log` that is not of a lost connection."""
    lines = log.splitlines()
    found = []
    for n, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last):"):
            last = next((x for x in lines[n + 1:] if x and not x.startswith(" ")), "(cut off)")
            if not LOST_CONNECTION.match(last):
                found.append(last)
    return found


# --- the batch and what it must end as -----------------------------------------------------

def start_batch(live: Live, rows: int = ROWS) -> str:
    """Upload a batch of `rows` births and approve it (the batch job is queued): its id."""
    people = officer_department(live)
    batch = post_batch(live, people["clerk"], as_csv(births(rows, first=700))).json()
    if "sample" in batch["links"]:  # an officer approves what they have seen a specimen of
        sample = people["officer"].get(live.url(batch["links"]["sample"]), timeout=60).json()
        specimen = people["officer"].get(live.url(sample["specimens"][0]["pdf"]), timeout=120)
        assert specimen.status_code == 200, specimen.text
    approved = people["officer"].post(live.url(f"/api/v1/batches/{batch['id']}/approve"),
                                      timeout=60)
    assert approved.status_code == 200, approved.text
    for http in people.values():
        http.close()
    return str(batch["id"])


def issued(live: Live, batch_id: str) -> int:
    return batch_states(live, batch_id).count(State.ISSUED.value)


def assert_issued_once(live: Live, batch_id: str) -> None:
    """Every row issued, each signed once, the numbers consecutive (no gap, no repeat)."""
    with live.runtime.sessions() as session:
        made = session.scalars(select(Certificate).join(
            BatchRow, BatchRow.certificate_id == Certificate.id).where(
            BatchRow.batch_id == batch_id)).all()
        assert len(made) == ROWS and {c.state for c in made} == {State.ISSUED.value}
        serials = sorted(int((c.number or "").rsplit("/", 1)[1]) for c in made)
        assert serials == list(range(serials[0], serials[0] + ROWS))
        signs = dict(session.execute(select(AuditEvent.certificate_id, func.count()).where(
            AuditEvent.action == "sign").group_by(AuditEvent.certificate_id)).all())
        assert signs == {c.id: 1 for c in made}


def rq_workers(redis_url: str) -> int:
    from redis import Redis
    from rq import Worker

    redis = Redis.from_url(redis_url)
    try:
        return Worker.count(connection=redis)
    finally:
        redis.close()


def assert_rq_clean(redis_url: str) -> None:
    """No job failed, none left as if running."""
    from redis import Redis
    from rq import Queue
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    redis = Redis.from_url(redis_url)
    try:
        queue = Queue("sign", connection=redis)
        assert FailedJobRegistry(queue=queue).get_job_ids() == []
        assert StartedJobRegistry(queue=queue).get_job_ids() == []
    finally:
        redis.close()


@dataclass(frozen=True)
class Outcome:
    batch_id: str
    pending_at_stop: int  # rows not yet issued as the service stopped
    seconds_after: float  # from the service's return to the batch's completion


def batch_through_outage(live: Live, log: Path, stop: Callable[[], None],
                         start: Callable[[], None], seconds: float) -> Outcome:
    """Start a worker and a batch; once some rows are issued, stop the service for `seconds`
    and start it again, then wait for the batch to complete. The worker must live through it
    all (no supervisor restarts it here: it waits for the service itself)."""
    worker = start_worker(live.runtime.settings, log)
    try:
        batch_id = start_batch(live)
        wait_until(lambda: issued(live, batch_id) >= 5, 120, "the worker issued nothing")
        pending = ROWS - issued(live, batch_id)
        stop()
        time.sleep(seconds)
        start()
        back = time.monotonic()
        wait_until(lambda: issued(live, batch_id) == ROWS, 120,
                   f"the batch did not complete after the outage:\n{log.read_text()[-6000:]}")
        taken = time.monotonic() - back
        assert worker.poll() is None, f"the worker died:\n{log.read_text()[-6000:]}"
        # Registered, so `rq info` counts it (a Redis that came back empty forgot it, and it
        # registered again, at the heartbeat RQ sends once a job has ended: just after the job's
        # last row is committed, so not necessarily by the time the test sees that row).
        wait_until(lambda: rq_workers(live.runtime.settings.redis_url or "") == 1, 30,
                   f"the worker did not register again:\n{log.read_text()[-6000:]}")
    finally:
        code = stop_worker(worker)
    assert code == 0, log.read_text()[-6000:]
    return Outcome(batch_id, pending, taken)


# --- the outages -------------------------------------------------------------------------

@pytest.mark.parametrize("private_redis", [True, False], ids=["appendonly", "no-persistence"],
                         indirect=True)
def test_a_batch_completes_across_a_redis_restart(
        live_on_private_redis: Live, private_redis: RedisServer, tmp_path: Path) -> None:
    live, log = live_on_private_redis, tmp_path / "worker.log"
    outcome = batch_through_outage(live, log, private_redis.stop, private_redis.start, 3)
    assert outcome.pending_at_stop >= 10, "stopped too late to prove anything"
    files = {p.name for p in private_redis.directory.iterdir()}
    assert ("appendonlydir" in files) == private_redis.persistent, files
    assert_issued_once(live, outcome.batch_id)
    assert_rq_clean(private_redis.url)
    text = log.read_text()
    # The outage reached the worker: it waited for Redis (with a job in hand: PatientWorker;
    # idle: RQ's own wait for the next job).
    assert ("Redis is unreachable while" in text
            or "could not connect to Redis instance" in text), text[-6000:]
    assert unexpected_tracebacks(text) == [], text[-6000:]
    assert outcome.seconds_after < 60, outcome


def test_a_batch_completes_across_a_postgresql_stop(
        live_on_private_postgres: Live, private_postgres: PostgresCluster,
        private_redis: RedisServer, tmp_path: Path) -> None:
    live, log = live_on_private_postgres, tmp_path / "worker.log"
    # Longer than a group job's PDFs take (15 at B-T, about 5 s: issuer/issue_group.py makes
    # them with no transaction open), so the job reaches its next transaction in the outage.
    outcome = batch_through_outage(live, log, private_postgres.stop, private_postgres.start, 12)
    assert outcome.pending_at_stop >= 10, "stopped too late to prove anything"
    assert_issued_once(live, outcome.batch_id)
    assert_rq_clean(private_redis.url)
    text = log.read_text()
    # The job in hand waited for the database (issuer/db.outlasting_outages): no job failed,
    # and no record waited in `signing` for the sweeper (two minutes: issue.RESUME_AFTER).
    assert "the database is out of reach while" in text, text[-6000:]
    assert "the database answers again after" in text, text[-6000:]
    assert unexpected_tracebacks(text) == [], text[-6000:]
    assert outcome.seconds_after < 60, outcome


def test_only_a_database_out_of_reach_is_waited_for(tmp_path: Path) -> None:
    """What a job waits for (issuer/db.outlasting_outages): a server that does not answer, for
    its patience and no longer; never a statement's own error."""
    from issuer.db import lost_connection, outlasting_outages

    nobody = sa.create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    local = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    reachable = sa.create_engine(POSTGRES_URL)

    def connect(engine: sa.Engine, sql: str) -> None:
        with engine.connect() as conn:
            conn.execute(sa.text(sql))

    try:
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as refused:
            outlasting_outages("connecting", lambda: connect(nobody, "SELECT 1"), patience=1.5)
        assert lost_connection(refused.value) and 1.5 <= time.monotonic() - started < 5
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as no_table:
            outlasting_outages("reading", lambda: connect(local, "SELECT * FROM nothing"))
        assert not lost_connection(no_table.value) and time.monotonic() - started < 1
        # A statement psycopg itself refuses carries no SQLSTATE, like a refused connection,
        # but it is a ProgrammingError, not an OperationalError: a bug, never waited for.
        started = time.monotonic()
        with pytest.raises(sa.exc.ProgrammingError) as bad_call, reachable.connect() as conn:
            outlasting_outages("reading", lambda: conn.exec_driver_sql("SELECT %s", ()))
        assert getattr(bad_call.value.orig, "sqlstate", "") is None
        assert not lost_connection(bad_call.value) and time.monotonic() - started < 1
    finally:
        nobody.dispose()
        local.dispose()
        reachable.dispose()
