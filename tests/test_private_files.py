"""Password files are the owner's alone from their first byte, and the local stack changes no
permission outside the project's folder."""

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from fraud.cli import UserError
from fraud.secrets import PasswordFile, write_private
from fraud_devstack.postgres_server import ensure_traversable


def test_a_renewed_password_file_follows_no_link_planted_under_a_predictable_name(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    passwords = iter(["first", "second"])
    password_file = PasswordFile("test secret", lambda: next(passwords))
    os.symlink(victim, f"{password_file.path}.new")  # what another local user could plant beside it
    umask = os.umask(0)  # a permissive umask must not matter
    try:
        assert password_file.refresh(force=True) is True
    finally:
        os.umask(umask)
        os.remove(f"{password_file.path}.new")
    assert victim.read_text() == "untouched\n"
    assert Path(password_file.path).read_text() == "*:*:*:*:second\n"
    assert stat.S_IMODE(os.stat(password_file.path).st_mode) == 0o600


def test_write_private_creates_the_file_0600_whatever_the_umask_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "pgpass"
    umask = os.umask(0)
    try:
        write_private(target, "127.0.0.1:*:*:fraud:secret\n")
        write_private(target, "127.0.0.1:*:*:fraud:rotated\n")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text().endswith("rotated\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pgpass"]


@pytest.fixture
def passable_root():
    """A folder every user may pass, as a clone's parents usually are (pytest's own are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="fraud-perm-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


def test_the_local_postgres_opens_folders_of_the_project_only(passable_root):
    outside = passable_root / "home"
    project = outside / "project"
    data = project / "var" / "stack"
    data.mkdir(parents=True)
    outside.chmod(0o700)
    (project / "var").chmod(0o700)
    with pytest.raises(UserError, match=f"cannot pass {outside} .*chmod o\\+x {outside}"):
        ensure_traversable([data], inside=project)
    assert stat.S_IMODE(outside.stat().st_mode) == 0o700, "a folder outside the project is never changed"
    outside.chmod(0o755)
    ensure_traversable([data], inside=project)
    assert (project / "var").stat().st_mode & stat.S_IXOTH, "the project's own folder is opened"
