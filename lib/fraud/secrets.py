"""Secrets by reference: the only place a password is read, from AWS Secrets Manager.

The database password goes to a private libpq password file (``PasswordFile``), named in the DSN
with ``passfile``: every connection of the process (the pool, the checkpoint lock, the waits for
the server) reads it at connect time, and the password itself is in no DSN, log or error. After a
failed connection it is read again (at most once a minute): an RDS-managed secret rotates every
7 days, and the job then carries on with the new password instead of failing its reconnects.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import tempfile
import threading
import time

from fraud.cli import UserError

log = logging.getLogger(__name__)

REREAD_AFTER_S = 60.0  # a failing connection reads the secret again at most this often


def secret_password(secret_arn: str) -> str:
    """The ``password`` field of a Secrets Manager secret (RDS-managed secrets use this layout)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    except (BotoCoreError, ClientError) as err:
        raise UserError(f"cannot read secret {secret_arn}: {err}") from None
    try:
        return json.loads(value)["password"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"secret {secret_arn} holds no JSON 'password' field") from None


class PasswordFile:
    """A secret's password in a libpq password file only this user can read."""

    def __init__(self, secret_arn: str):
        self.secret_arn = secret_arn
        fd, self.path = tempfile.mkstemp(prefix="fraud-pgpass-")  # mode 0600
        os.close(fd)
        atexit.register(self._remove)  # the password does not outlive the process on disk
        self._lock = threading.Lock()
        self._password: str | None = None
        self._read_at = 0.0
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> bool:
        """Read the secret again (unless it was read less than ``REREAD_AFTER_S`` ago); True if the
        password changed. A secret that cannot be read keeps the old password."""
        with self._lock:
            if not force and time.monotonic() - self._read_at < REREAD_AFTER_S:
                return False
            self._read_at = time.monotonic()
            try:
                password = secret_password(self.secret_arn)
            except UserError:
                if force:
                    raise
                log.warning("could not read the database secret again; keeping the password in use")
                return False
            if password == self._password:
                return False
            escaped = password.replace("\\", "\\\\").replace(":", "\\:")
            tmp = f"{self.path}.new"
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
                out.write(f"*:*:*:*:{escaped}\n")
            os.replace(tmp, self.path)
            changed = self._password is not None
            self._password = password
            if changed:
                log.warning("the database password changed in %s (rotated): using the new one", self.secret_arn)
            return changed


    def _remove(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


_FILES: dict[str, PasswordFile] = {}
_FILES_LOCK = threading.Lock()


def password_file(secret_arn: str) -> str:
    """The path of the process's password file for ``secret_arn`` (read on first use)."""
    with _FILES_LOCK:
        if secret_arn not in _FILES:
            _FILES[secret_arn] = PasswordFile(secret_arn)
        return _FILES[secret_arn].path


def reread_passwords() -> bool:
    """After a failed connection: read the process's secrets again (rate-limited); True if one changed."""
    with _FILES_LOCK:
        files = list(_FILES.values())
    return any([f.refresh() for f in files])
