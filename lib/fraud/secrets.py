"""Database credentials by reference: the only place a password or token is read.

Two sources: the admin's password from an AWS Secrets Manager secret (the RDS-managed master
secret, for migrations only), and each component's RDS IAM authentication token (signed locally
with the process's AWS credentials, valid 15 minutes). Either goes to a private libpq password file
(``PasswordFile``), named in the DSN with ``passfile``: every connection of the process (the pool,
the checkpoint lock, the waits for the server) reads it at connect time, and the credential itself
is in no DSN, log or error. After a failed connection it is read again (at most once a minute): a
managed secret rotates every 7 days, and the job carries on with the new password instead of
failing its reconnects. Tokens are also renewed every ``TOKEN_RENEW_S`` in the background, so a new
connection never presents an expired one.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable

from fraud.cli import UserError

log = logging.getLogger(__name__)

REREAD_AFTER_S = 60.0  # a failing connection reads the secret again at most this often
TOKEN_RENEW_S = 600.0  # RDS IAM tokens are valid for 15 minutes


def secret_field(secret_arn: str, field: str) -> str:
    """A field of a Secrets Manager secret holding JSON (RDS-managed secrets: username, password)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    except (BotoCoreError, ClientError) as err:
        raise UserError(f"cannot read secret {secret_arn}: {err}") from None
    try:
        return json.loads(value)[field]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"secret {secret_arn} holds no JSON {field!r} field") from None


def iam_token(host: str, port: int, user: str) -> str:
    """An RDS IAM authentication token for ``user`` (needs ``rds-db:connect`` on that user)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return boto3.client("rds").generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
    except (BotoCoreError, ClientError) as err:
        raise UserError(f"cannot sign an RDS IAM token for {user}: {err}") from None


class PasswordFile:
    """A credential (``read()``, named ``what`` in messages) in a libpq password file only this
    user can read; with ``renew_every_s``, read again on that period by a daemon thread."""

    def __init__(self, what: str, read: Callable[[], str], renew_every_s: float | None = None):
        self.what = what
        self._read = read
        fd, self.path = tempfile.mkstemp(prefix="fraud-pgpass-")  # mode 0600
        os.close(fd)
        atexit.register(self._remove)  # the password does not outlive the process on disk
        self._lock = threading.Lock()
        self._password: str | None = None
        self._read_at = 0.0
        self.refresh(force=True)
        if renew_every_s:
            threading.Thread(target=self._renew, args=(renew_every_s,), name=f"renew {what}", daemon=True).start()

    def _renew(self, every_s: float) -> None:
        while True:
            time.sleep(every_s)
            try:
                self.refresh(force=True)
            except Exception as err:  # noqa: BLE001  the thread must live: the next round tries again
                log.warning("could not renew %s (%s); the one in use stays until it expires", self.what, err)

    def refresh(self, force: bool = False) -> bool:
        """Read the secret again (unless it was read less than ``REREAD_AFTER_S`` ago); True if the
        password changed. A secret that cannot be read keeps the old password."""
        with self._lock:
            if not force and time.monotonic() - self._read_at < REREAD_AFTER_S:
                return False
            self._read_at = time.monotonic()
            try:
                password = self._read()
            except UserError:
                if force:
                    raise
                log.warning("could not read %s again; keeping the one in use", self.what)
                return False
            if password == self._password:
                return False
            escaped = password.replace("\\", "\\\\").replace(":", "\\:")
            write_private(self.path, f"*:*:*:*:{escaped}\n")
            changed = self._password is not None
            self._password = password
            if changed:
                log.info("%s changed (rotated or renewed): using the new one", self.what)
            return changed

    def _remove(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def write_private(path: str | os.PathLike, text: str, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``text``, readable by its owner only from the first byte: written to a new
    file of a random name in the same folder (``mkstemp``: mode 0600 and ``O_EXCL``, so nothing planted
    under a predictable name is followed), given to ``owner`` (uid, gid) if set, renamed over ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            if owner is not None:
                os.fchown(out.fileno(), *owner)
            os.fsync(out.fileno())  # the file holds the only copy of generated passwords: on disk before the rename
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


_FILES: dict[str, PasswordFile] = {}
_FILES_LOCK = threading.Lock()


def password_file(secret_arn: str) -> str:
    """The path of the process's password file for the secret's ``password`` (read on first use)."""
    return _file(secret_arn, lambda: PasswordFile(f"secret {secret_arn}", lambda: secret_field(secret_arn, "password")))


def iam_token_file(host: str, port: int, user: str) -> str:
    """The path of the process's password file holding a renewed IAM token for ``user``."""
    return _file(f"iam:{user}@{host}:{port}", lambda: PasswordFile(
        f"the IAM token of {user}", lambda: iam_token(host, port, user), renew_every_s=TOKEN_RENEW_S))


def _file(key: str, make: Callable[[], PasswordFile]) -> str:
    with _FILES_LOCK:
        if key not in _FILES:
            _FILES[key] = make()
        return _FILES[key].path


def reread_passwords() -> bool:
    """After a failed connection: read the process's secrets again (rate-limited); True if one changed."""
    with _FILES_LOCK:
        files = list(_FILES.values())
    return any([f.refresh() for f in files])
