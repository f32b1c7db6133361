"""Job runs on EMR Serverless: the StartJobRun requests, status with backoff, logs, cancel.

The streaming job runs in ``STREAMING`` mode with a retry policy (EMR restarts it from
its checkpoint after a failure, at most ``max_failed_attempts_per_hour`` times an hour);
training runs in ``BATCH`` mode. Both run the same entry points as locally
(``jobs/*.py --config aws.yaml``): only the config and the FRAUD_* variables differ.

The ``clientToken`` is a digest of the request itself, so submitting the same release
twice (a retried command, a double click) returns the run already started instead of
a second streaming query on the same checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from emr.artifacts import Release
from emr.deployment import Deployment
from emr.validation import validate
from fraud.cli import UserError

# venv-pack archive unpacked as ./environment in every driver and executor container.
PYTHON = "./environment/bin/python"
TERMINAL_STATES = ("SUCCESS", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class JobKind:
    mode: str
    name: str
    # Spark resources; EMR sizes each worker from cores and memory (+10 % overhead).
    resources: dict[str, str]
    # Its runtime role (``Deployment.role_arns``): what it may reach in AWS and as whom in PostgreSQL.
    role: str = "batch"


# Training and retraining: fitting the forest on silver, up to four 4-vCPU executors.
_TRAINING = {
    "spark.driver.cores": "4",
    "spark.driver.memory": "14g",
    "spark.executor.cores": "4",
    "spark.executor.memory": "14g",
    "spark.dynamicAllocation.enabled": "true",
    "spark.dynamicAllocation.maxExecutors": "4",
}

JOB_KINDS = {
    # One 4-vCPU executor carries normal load (10K events/min); dynamic allocation adds
    # up to three more for peaks, within the application's maximum capacity. The driver as large
    # as that executor: it plans every micro-batch, scores it (fraud.driver_scorer), writes the alerts and
    # commits the lake; in make bench (2026-12-04) 46 % of the job's JVM samples were outside
    # Spark's task threads, and the Python driver's own CPU comes on top.
    "stream": JobKind("STREAMING", "fraud-stream", {
        "spark.driver.cores": "4",
        "spark.driver.memory": "14g",
        "spark.executor.cores": "4",
        "spark.executor.memory": "14g",
        "spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.minExecutors": "1",
        "spark.dynamicAllocation.initialExecutors": "1",
        "spark.dynamicAllocation.maxExecutors": "4",
    }, role="stream"),
    "train": JobKind("BATCH", "fraud-train", _TRAINING),
    # The last 30 days of silver: the stream's weeks at normal load are tens of millions of rows.
    "retrain": JobKind("BATCH", "fraud-retrain", _TRAINING),
    # Compaction rewrites a day's small files per partition; VACUUM lists and deletes from the driver.
    "maintain": JobKind("BATCH", "fraud-maintain", {
        "spark.driver.cores": "2",
        "spark.driver.memory": "7g",
        "spark.executor.cores": "4",
        "spark.executor.memory": "14g",
        "spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.maxExecutors": "2",
    }),
    # An hour of silver and gold: one aggregation per table, on the driver's own cores.
    "drift": JobKind("BATCH", "fraud-drift", {
        "spark.driver.cores": "2",
        "spark.driver.memory": "7g",
        "spark.executor.cores": "2",
        "spark.executor.memory": "7g",
        "spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.maxExecutors": "1",
    }),
    # The database's roles, schema and grants (jobs/migrate.py), from inside the VPC: no Spark work,
    # the smallest driver; the only role that reads the master secret.
    "migrate": JobKind("BATCH", "fraud-migrate", {
        "spark.driver.cores": "1",
        "spark.driver.memory": "2g",
        "spark.executor.cores": "1",
        "spark.executor.memory": "2g",
        "spark.dynamicAllocation.enabled": "false",
        "spark.executor.instances": "1",
    }, role="migrate"),
}


def spark_submit_parameters(kind: str, deployment: Deployment, release: Release) -> str:
    """``--conf`` flags: the Python archive, jars, config file, FRAUD_* variables, resources."""
    conf = {
        "spark.archives": f"{release.archive}#environment",
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": PYTHON,
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": PYTHON,
        "spark.executorEnv.PYSPARK_PYTHON": PYTHON,
        "spark.jars": ",".join(release.jars),
        "spark.files": release.config,
    }
    for name, value in deployment.job_environment.items():
        conf[f"spark.emr-serverless.driverEnv.{name}"] = value
        conf[f"spark.executorEnv.{name}"] = value
    conf.update(JOB_KINDS[kind].resources)
    for key, value in conf.items():
        # EMR splits sparkSubmitParameters on whitespace; no value may contain any.
        if not value or any(ch.isspace() for ch in value):
            raise UserError(f"Spark setting {key} is empty or contains whitespace: {value!r}")
    return " ".join(f"--conf {key}={value}" for key, value in conf.items())


def start_job_run_request(
    kind: str,
    deployment: Deployment,
    release: Release,
    arguments: list[str] = (),
    *,
    max_failed_attempts_per_hour: int = 5,
    max_attempts: int = 1,
    execution_timeout_minutes: int = 240,
    client_token: str | None = None,
) -> dict:
    """The StartJobRun parameters for ``kind`` (a key of ``JOB_KINDS``)."""
    if kind not in JOB_KINDS:
        raise UserError(f"unknown job kind {kind!r} ({', '.join(JOB_KINDS)})")
    job = JOB_KINDS[kind]
    request = {
        "applicationId": deployment.application_id,
        "executionRoleArn": deployment.role_arns[job.role],
        "name": job.name,
        "mode": job.mode,
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": release.entry_points[kind],
                "entryPointArguments": ["--config", release.config_name, *arguments],
                "sparkSubmitParameters": spark_submit_parameters(kind, deployment, release),
            }
        },
        "configurationOverrides": {
            # The logs hold stack traces and row samples: encrypted with the environment's key.
            "monitoringConfiguration": {"s3MonitoringConfiguration": {
                "logUri": deployment.log_uri, "encryptionKeyArn": deployment.kms_key_arn}}
        },
        "tags": {"app": "fraud", "job": kind},
    }
    if job.mode == "STREAMING":
        if not 1 <= max_failed_attempts_per_hour <= 10:
            raise UserError("--max-failed-attempts-per-hour must be between 1 and 10")
        request["retryPolicy"] = {"maxFailedAttemptsPerHour": max_failed_attempts_per_hour}
    else:
        if not 1 <= max_attempts <= 10:
            raise UserError("--max-attempts must be between 1 and 10")
        request["retryPolicy"] = {"maxAttempts": max_attempts}
        request["executionTimeoutMinutes"] = execution_timeout_minutes
    request["clientToken"] = client_token or hashlib.sha256(
        json.dumps(request, sort_keys=True).encode()).hexdigest()[:64]
    return validate("emr-serverless", "StartJobRun", request)  # as the service checks it (emr.validation)


def submit(emr, request: dict) -> str:
    """Start the run (idempotent through its client token); return the job run id."""
    try:
        return emr.start_job_run(**request)["jobRunId"]
    except ClientError as err:
        raise UserError(f"EMR Serverless refused the job run: {_message(err)}") from None


def job_run(emr, application_id: str, job_run_id: str) -> dict:
    try:
        return emr.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"]
    except ClientError as err:
        raise UserError(f"cannot read job run {job_run_id}: {_message(err)}") from None


def wait(
    emr,
    application_id: str,
    job_run_id: str,
    *,
    until: str = "RUNNING",
    timeout_s: float = 1800,
    first_delay_s: float = 5,
    max_delay_s: float = 60,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    report: Callable[[dict], None] = lambda run: None,
) -> dict:
    """Poll until the run reaches ``until`` ("RUNNING") or any terminal state; return it.

    The delay between polls grows by half each time up to ``max_delay_s`` (GetJobRun
    is throttled per account). Past ``timeout_s`` a UserError names the last state.
    """
    deadline = clock() + timeout_s
    delay = first_delay_s
    last_state = None
    while True:
        run = job_run(emr, application_id, job_run_id)
        if run["state"] != last_state:
            report(run)
            last_state = run["state"]
        if run["state"] == until or run["state"] in TERMINAL_STATES:
            return run
        if clock() + delay > deadline:
            raise UserError(f"job run {job_run_id} still {run['state']} after {timeout_s:g} s")
        sleep(delay)
        delay = min(delay * 1.5, max_delay_s)


def log_location(deployment: Deployment, application_id: str, job_run_id: str) -> str:
    """The S3 folder of a run's logs (driver stdout/stderr under SPARK_DRIVER/, per attempt)."""
    return f"{deployment.log_uri}applications/{application_id}/jobs/{job_run_id}/"


def dashboard_url(emr, application_id: str, job_run_id: str) -> str:
    """A short-lived link to the run's Spark UI (live) or history server."""
    try:
        return emr.get_dashboard_for_job_run(applicationId=application_id, jobRunId=job_run_id)["url"]
    except ClientError as err:
        raise UserError(f"no dashboard for job run {job_run_id}: {_message(err)}") from None


def cancel(emr, application_id: str, job_run_id: str, grace_period_s: int | None = None) -> None:
    """Cancel a run; for the stream, a grace period lets the current micro-batch finish."""
    params = {"applicationId": application_id, "jobRunId": job_run_id}
    if grace_period_s is not None:
        params["shutdownGracePeriodInSeconds"] = grace_period_s
    try:
        emr.cancel_job_run(**params)
    except ClientError as err:
        raise UserError(f"cannot cancel job run {job_run_id}: {_message(err)}") from None


def _message(err: ClientError) -> str:
    error = err.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
