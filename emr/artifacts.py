"""Upload what a job run needs to the artifacts bucket, content-addressed and idempotent.

Every file goes to ``s3://<artifacts>/emr/<sha256 prefix>/<file name>``: a file already
there under its digest is not uploaded again, and a changed file gets a new key, so a
running job never sees its inputs change under it. The file name is kept because Spark
places ``spark.files`` (the config) in the driver's working folder under that name.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from fraud.cli import UserError

log = logging.getLogger(__name__)

PREFIX = "emr"
# The entry points EMR runs; the fraud package itself travels in the archive.
ENTRY_POINTS = {"stream": "jobs/stream_fraud.py", "train": "jobs/train_model.py", "maintain": "jobs/maintain_lake.py",
                "drift": "jobs/drift.py", "retrain": "jobs/retrain.py", "migrate": "jobs/migrate.py"}


@dataclass(frozen=True)
class Release:
    """S3 locations of one consistent set of job inputs."""

    archive: str
    config: str
    entry_points: dict[str, str]
    jars: tuple[str, ...]

    @property
    def config_name(self) -> str:
        return self.config.rsplit("/", 1)[-1]

    def digest(self) -> str:
        """Identity of the whole release (its keys are content digests)."""
        parts = [self.archive, self.config, *sorted(self.entry_points.values()), *self.jars]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def upload_file(s3, bucket: str, path: Path) -> str:
    """Upload ``path`` under its digest unless it is there already; return its s3:// URI."""
    if not path.is_file():
        raise UserError(f"file to upload not found: {path}")
    key = f"{PREFIX}/{file_digest(path)[:16]}/{path.name}"
    uri = f"s3://{bucket}/{key}"
    try:
        s3.head_object(Bucket=bucket, Key=key)
        log.info("already uploaded: %s", uri)
        return uri
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise UserError(f"cannot check {uri}: {err}") from None
    from boto3.s3.transfer import TransferConfig

    try:
        # One thread: the archive is a few hundred MB at most and progress stays in order.
        s3.upload_file(str(path), bucket, key, Config=TransferConfig(use_threads=False))
    except ClientError as err:
        raise UserError(f"cannot upload {path} to {uri}: {err}") from None
    log.info("uploaded %s -> %s", path, uri)
    return uri


def upload_release(s3, bucket: str, root: Path, archive: Path, config: Path, jars: list[Path]) -> Release:
    """Upload archive, config, entry points (relative to ``root``) and jars; return their URIs."""
    if not archive.name.endswith(".tar.gz"):
        raise UserError(f"the environment archive must be a .tar.gz from venv-pack, got {archive}")
    if not archive.is_file():
        raise UserError(f"environment archive not found: {archive} (build it with emr/Dockerfile, see docs/deploy-aws.md)")
    if not jars:
        raise UserError("no jars to upload (Delta, Kafka source, MSK IAM auth)")
    return Release(
        archive=upload_file(s3, bucket, archive),
        config=upload_file(s3, bucket, config),
        entry_points={kind: upload_file(s3, bucket, root / rel) for kind, rel in ENTRY_POINTS.items()},
        jars=tuple(upload_file(s3, bucket, jar) for jar in jars),
    )
