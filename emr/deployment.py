"""What Terraform deployed, read from ``terraform output -json`` of ``terraform/environments/<env>``.

Only identifiers and locations: the RDS password stays in Secrets Manager and is
referenced by ARN (``FRAUD_POSTGRES_ADMIN_SECRET_ARN`` in ``job_environment``; only migrations read it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from fraud.cli import UserError
from fraud.config import ENV_OVERRIDES

# job_environment must set exactly what conf/aws.yaml leaves to the deployment: every config override
# but the Dash app's own (its task definition sets them) and the CA bundle's path (the job's archive
# carries it where conf/aws.yaml says).
JOB_ENVIRONMENT_KEYS = tuple(k for k in ENV_OVERRIDES
                             if not k.startswith("FRAUD_DASH_") and k != "FRAUD_POSTGRES_SSL_ROOT_CERT")
ROLES = ("stream", "batch", "migrate")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class Deployment:
    region: str
    application_id: str
    # Runtime role per job role (emr.runs.JobKind.role): "stream"; "batch" (training, retraining,
    # drift, maintenance: the registry writable, no Kafka); "migrate" (the master secret only).
    role_arns: dict[str, str]
    artifacts_bucket: str
    kms_key_arn: str  # the job runs' logs are encrypted with it
    # FRAUD_* variables for the job (config overrides), from Terraform.
    job_environment: dict[str, str]

    @property
    def log_uri(self) -> str:
        return f"s3://{self.artifacts_bucket}/logs/"


def load_deployment(path: str | Path) -> Deployment:
    """Parse ``terraform output -json > PATH`` (plain ``{name: value}`` JSON is accepted too)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"Terraform outputs not found: {path} (terraform output -json > {path})") from None
    except ValueError:
        raise UserError(f"{path}: not valid JSON (expected `terraform output -json`)") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a JSON object of Terraform outputs")
    values = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in raw.items()}

    def need(name: str, kind: type) -> object:
        if name not in values:
            raise UserError(f"{path}: output {name!r} missing")
        if not isinstance(values[name], kind) or not values[name]:
            raise UserError(f"{path}: output {name!r} must be a non-empty {kind.__name__}")
        return values[name]

    environment = need("job_environment", dict)
    missing = [k for k in JOB_ENVIRONMENT_KEYS if not environment.get(k)]
    if missing:
        raise UserError(f"{path}: job_environment lacks {', '.join(missing)}")
    unknown = sorted(set(environment) - set(JOB_ENVIRONMENT_KEYS))
    if unknown:
        raise UserError(f"{path}: job_environment has unknown key {unknown[0]}")
    deployment = Deployment(
        region=need("region", str),
        application_id=need("emr_application_id", str),
        role_arns={role: need(f"emr_{role}_role_arn", str) for role in ROLES},
        artifacts_bucket=need("artifacts_bucket", str),
        kms_key_arn=need("kms_key_arn", str),
        job_environment={k: str(environment[k]) for k in JOB_ENVIRONMENT_KEYS},
    )
    if not _BUCKET.match(deployment.artifacts_bucket):
        raise UserError(f"{path}: artifacts_bucket {deployment.artifacts_bucket!r} is not an S3 bucket name")
    for role, arn in deployment.role_arns.items():
        if not arn.startswith("arn:aws"):
            raise UserError(f"{path}: emr_{role}_role_arn {arn!r} is not an ARN")
    return deployment
