"""How each component authenticates to PostgreSQL in AWS: its own user, an RDS IAM token its role
signs (botocore presigns locally: no AWS call, nothing mocked), the server's certificate verified."""

import stat
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from psycopg.conninfo import conninfo_to_dict

from fraud.cli import UserError
from fraud.config import load_config
from fraud.db import admin_dsn, postgres_dsn
from fraud.project import ROOT

HOST = "fraud-dev.abc123.us-east-1.rds.amazonaws.com"


@pytest.fixture
def aws_config(monkeypatch):
    from fraud import secrets

    monkeypatch.setattr(secrets, "_FILES", {})  # this test's token files are no other test's to refresh
    for name, value in {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-real-key",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return load_config(ROOT / "conf" / "aws.yaml", environ={
        "FRAUD_POSTGRES_DSN": f"postgresql://{HOST}:5432/fraud?sslmode=verify-full"})


@pytest.mark.parametrize("component", ["stream", "dash", "simulator", "batch"])
def test_each_component_connects_as_its_own_user_with_a_token_for_that_user(aws_config, component):
    params = conninfo_to_dict(postgres_dsn(aws_config, component))
    assert params["user"] == f"fraud_{component}" and params["host"] == HOST
    assert params["sslmode"] == "verify-full" and params["sslrootcert"] == "environment/share/rds-ca.pem"
    assert "password" not in params
    passfile = Path(params["passfile"])
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    host, port, database, user, escaped = passfile.read_text().strip().split(":", 4)
    assert (host, port, database, user) == ("*", "*", "*", "*")
    token = escaped.replace("\\:", ":").replace("\\\\", "\\")  # libpq's escapes
    query = parse_qs(urlsplit(f"https://{token}").query)
    assert urlsplit(f"https://{token}").hostname == HOST
    assert query["Action"] == ["connect"] and query["DBUser"] == [f"fraud_{component}"]
    assert query["X-Amz-Expires"] == ["900"]


def test_migrations_alone_need_the_admin_secret(aws_config):
    with pytest.raises(UserError, match="neither postgres.admin_secret_arn nor postgres.admin_user is set"):
        admin_dsn(replace(aws_config, postgres=replace(aws_config.postgres, admin_secret_arn=None)))
