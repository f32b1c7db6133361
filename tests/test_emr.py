"""EMR Serverless packaging and submission, against botocore's Stubber.

Stubber checks every request against the real service model shipped with the pinned
botocore, but only for required members, types and minimum lengths; the rest of what the service
checks (patterns, enums, maximum lengths, ranges) ``emr.validation`` checks on every StartJobRun
request built, and the tests below hold it to the cases the Stubber lets through. No AWS endpoint
is reached.
"""

import configparser
import gzip
import json
import re
import subprocess
import sys

import boto3
import pytest
from botocore.stub import ANY, Stubber

from emr import runs
from emr.artifacts import ENTRY_POINTS, Release, file_digest, upload_release
from emr.cost import markdown_table, stream_resources
from emr.deployment import JOB_ENVIRONMENT_KEYS, load_deployment
from fraud.cli import UserError
from fraud.config import load_config

from conftest import ROOT

APP = "00fq1w2e3r4t5y6u"
RUN = "00fq9z8x7c6v5b4n"
RUN_ARN = f"arn:aws:emr-serverless:us-east-1:123456789012:/applications/{APP}/jobruns/{RUN}"
ROLE = "arn:aws:iam::123456789012:role/fraud-dev-emr-stream"
BATCH_ROLE = "arn:aws:iam::123456789012:role/fraud-dev-emr-batch"
MIGRATE_ROLE = "arn:aws:iam::123456789012:role/fraud-dev-emr-migrate"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0b1e7c3a-5d2f-4c1e-9a8b-2f3e4d5c6b7a"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1234-AbCdEf"
JOB_ENVIRONMENT = {
    "FRAUD_KAFKA_BOOTSTRAP_SERVERS": "b-1.fraud.x1.c2.kafka.us-east-1.amazonaws.com:9098,"
                                     "b-2.fraud.x1.c2.kafka.us-east-1.amazonaws.com:9098",
    "FRAUD_POSTGRES_DSN": "postgresql://fraud-dev.abc.us-east-1.rds.amazonaws.com:5432/fraud?sslmode=verify-full",
    "FRAUD_POSTGRES_ADMIN_SECRET_ARN": SECRET_ARN,
    "FRAUD_LAKE_ROOT": "s3://fraud-dev-lake-123456789012/lake",
    "FRAUD_CHECKPOINT_ROOT": "s3://fraud-dev-checkpoints-123456789012/checkpoints",
    "FRAUD_MODELS_ROOT": "s3://fraud-dev-models-123456789012/models",
}


def terraform_outputs(**overrides):
    """What `terraform output -json` prints for terraform/environments/dev."""
    values = {
        "region": "us-east-1",
        "emr_application_id": APP,
        "emr_stream_role_arn": ROLE,
        "emr_batch_role_arn": BATCH_ROLE,
        "emr_migrate_role_arn": MIGRATE_ROLE,
        "kms_key_arn": KEY,
        "artifacts_bucket": "fraud-dev-artifacts-123456789012",
        "job_environment": JOB_ENVIRONMENT,
        **overrides,
    }
    return {k: {"sensitive": False, "type": "string", "value": v} for k, v in values.items() if v is not None}


@pytest.fixture
def outputs_file(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(terraform_outputs()))
    return path


@pytest.fixture
def deployment(outputs_file):
    return load_deployment(outputs_file)


def client(service):
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="testing",
                                    aws_secret_access_key="testing")
    return session.client(service)


@pytest.fixture
def release():
    bucket = "s3://fraud-dev-artifacts-123456789012/emr"
    return Release(
        archive=f"{bucket}/aaaa/fraud_env.tar.gz",
        config=f"{bucket}/bbbb/aws.yaml",
        entry_points={"stream": f"{bucket}/cccc/stream_fraud.py", "train": f"{bucket}/dddd/train_model.py",
                      "maintain": f"{bucket}/gggg/maintain_lake.py", "drift": f"{bucket}/hhhh/drift.py",
                      "retrain": f"{bucket}/iiii/retrain.py", "migrate": f"{bucket}/jjjj/migrate.py"},
        jars=(f"{bucket}/eeee/delta-spark_2.13-4.2.0.jar", f"{bucket}/ffff/aws-msk-iam-auth-2.3.6.jar"),
    )


# --- deployment (Terraform outputs) -----------------------------------------------

def test_deployment_reads_terraform_output_json(deployment):
    assert deployment.application_id == APP
    assert deployment.job_environment == JOB_ENVIRONMENT
    assert deployment.log_uri == "s3://fraud-dev-artifacts-123456789012/logs/"


@pytest.mark.parametrize("overrides, message", [
    ({"emr_application_id": None}, "output 'emr_application_id' missing"),
    ({"job_environment": {**JOB_ENVIRONMENT, "FRAUD_LAKE_ROOT": ""}}, "job_environment lacks FRAUD_LAKE_ROOT"),
    ({"job_environment": {**JOB_ENVIRONMENT, "FRAUD_PASSWORD": "x"}}, "unknown key FRAUD_PASSWORD"),
    ({"artifacts_bucket": "Not_A_Bucket"}, "is not an S3 bucket name"),
])
def test_bad_terraform_outputs_fail_in_one_line(tmp_path, overrides, message):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(terraform_outputs(**overrides)))
    with pytest.raises(UserError, match=message) as err:
        load_deployment(path)
    assert "\n" not in str(err.value)


def test_aws_config_loads_with_the_deployments_environment():
    """The job on EMR loads conf/aws.yaml with exactly these overrides: it must work."""
    config = load_config(ROOT / "conf" / "aws.yaml", environ=JOB_ENVIRONMENT)
    assert config.kafka.bootstrap_servers == JOB_ENVIRONMENT["FRAUD_KAFKA_BOOTSTRAP_SERVERS"]
    assert config.postgres.admin_secret_arn == SECRET_ARN
    assert config.models_root == "s3://fraud-dev-models-123456789012/models"
    assert config.spark.master is None
    assert set(JOB_ENVIRONMENT_KEYS) <= set(__import__("fraud.config").config.ENV_OVERRIDES)


def test_models_root_defaults_to_the_lake():
    from fraud.registry import Registry

    config = load_config(ROOT / "conf" / "local.yaml", environ={})
    assert config.models_root is None
    assert Registry.for_config(config).root_uri == str(ROOT / "var" / "lake" / "models")


# --- artifacts ----------------------------------------------------------------------

def test_upload_is_content_addressed_and_skips_what_is_there(tmp_path):
    archive = tmp_path / "fraud_env.tar.gz"
    archive.write_bytes(gzip.compress(b"not really a venv"))
    config = ROOT / "conf" / "aws.yaml"
    jar = tmp_path / "aws-msk-iam-auth-2.3.6.jar"
    jar.write_bytes(b"PK fake jar")
    files = [archive, config, *(ROOT / path for path in ENTRY_POINTS.values()), jar]
    bucket = "fraud-dev-artifacts-123456789012"
    keys = [f"emr/{file_digest(f)[:16]}/{f.name}" for f in files]

    s3 = client("s3")
    with Stubber(s3) as stub:
        for key in keys:
            stub.add_client_error("head_object", service_error_code="404", http_status_code=404,
                                  expected_params={"Bucket": bucket, "Key": key})
            stub.add_response("put_object", {"ETag": '"x"'},
                              expected_params={"Bucket": bucket, "Key": key, "Body": ANY, "ChecksumAlgorithm": ANY})
        first = upload_release(s3, bucket, ROOT, archive, config, [jar])
        stub.assert_no_pending_responses()

    with Stubber(s3) as stub:
        for key in keys:
            stub.add_response("head_object", {"ContentLength": 1}, expected_params={"Bucket": bucket, "Key": key})
        second = upload_release(s3, bucket, ROOT, archive, config, [jar])
        stub.assert_no_pending_responses()

    assert first == second
    assert first.archive == f"s3://{bucket}/{keys[0]}"
    assert first.config_name == "aws.yaml"
    assert first.entry_points == {kind: f"s3://{bucket}/{key}" for kind, key in zip(ENTRY_POINTS, keys[2:])}


def test_upload_refuses_a_missing_or_wrong_archive_before_any_request(tmp_path):
    wrong = tmp_path / "env.zip"
    wrong.write_bytes(b"x")
    s3 = client("s3")
    with Stubber(s3):  # no response queued: any request would fail the test
        with pytest.raises(UserError, match="must be a .tar.gz"):
            upload_release(s3, "fraud-dev-artifacts", ROOT, wrong, ROOT / "conf" / "aws.yaml", [wrong])
        with pytest.raises(UserError, match="archive not found: .*build it with emr/Dockerfile"):
            upload_release(s3, "fraud-dev-artifacts", ROOT, tmp_path / "fraud_env.tar.gz",
                           ROOT / "conf" / "aws.yaml", [wrong])


# --- job runs -----------------------------------------------------------------------

def test_installed_botocore_knows_streaming_mode_and_retry_policy():
    shape = client("emr-serverless").meta.service_model.operation_model("StartJobRun").input_shape
    assert "STREAMING" in shape.members["mode"].enum
    assert set(shape.members["retryPolicy"].members) == {"maxAttempts", "maxFailedAttemptsPerHour"}
    assert shape.members["clientToken"].metadata["idempotencyToken"] is True


def conf_of(request):
    flags = request["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"].split()
    assert flags[::2] == ["--conf"] * (len(flags) // 2)
    return dict(flag.split("=", 1) for flag in flags[1::2])


def test_stream_request_is_valid_streaming_with_retries_jars_and_archive(deployment, release):
    request = runs.start_job_run_request("stream", deployment, release)
    emr = client("emr-serverless")
    with Stubber(emr) as stub:
        stub.add_response("start_job_run", {"applicationId": APP, "jobRunId": RUN, "arn": RUN_ARN},
                          expected_params=request)
        assert runs.submit(emr, request) == RUN
        stub.assert_no_pending_responses()

    assert (request["mode"], request["executionRoleArn"]) == ("STREAMING", ROLE)
    assert request["retryPolicy"] == {"maxFailedAttemptsPerHour": 5}
    assert "executionTimeoutMinutes" not in request
    driver = request["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"] == release.entry_points["stream"]
    assert driver["entryPointArguments"] == ["--config", "aws.yaml"]
    conf = conf_of(request)
    assert conf["spark.archives"] == f"{release.archive}#environment"
    assert conf["spark.jars"].split(",") == list(release.jars)
    assert conf["spark.files"] == release.config
    assert conf["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert conf["spark.executorEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    for name, value in JOB_ENVIRONMENT.items():
        assert conf[f"spark.emr-serverless.driverEnv.{name}"] == value
        assert conf[f"spark.executorEnv.{name}"] == value
    logs = request["configurationOverrides"]["monitoringConfiguration"]["s3MonitoringConfiguration"]
    assert logs == {"logUri": "s3://fraud-dev-artifacts-123456789012/logs/", "encryptionKeyArn": KEY}


def test_client_token_is_stable_for_the_same_release_and_changes_with_it(deployment, release):
    first = runs.start_job_run_request("stream", deployment, release)["clientToken"]
    again = runs.start_job_run_request("stream", deployment, release)["clientToken"]
    other = Release(**{**release.__dict__, "archive": release.archive.replace("aaaa", "a0a0")})
    changed = runs.start_job_run_request("stream", deployment, other)["clientToken"]
    assert first == again != changed
    assert len(first) == 64
    assert runs.start_job_run_request("stream", deployment, release, client_token="manual-1")["clientToken"] == "manual-1"


def test_train_request_is_a_bounded_batch_run(deployment, release):
    args = ["--train-test-id=history-seed7", "--eval-test-id=history-seed8"]
    request = runs.start_job_run_request("train", deployment, release, args, max_attempts=2)
    emr = client("emr-serverless")
    with Stubber(emr) as stub:
        stub.add_response("start_job_run", {"applicationId": APP, "jobRunId": RUN, "arn": RUN_ARN},
                          expected_params=request)
        runs.submit(emr, request)
    assert (request["mode"], request["executionRoleArn"]) == ("BATCH", BATCH_ROLE), "the registry's writer"
    assert request["retryPolicy"] == {"maxAttempts": 2}
    assert request["executionTimeoutMinutes"] == 240
    assert request["jobDriver"]["sparkSubmit"]["entryPoint"] == release.entry_points["train"]
    assert request["jobDriver"]["sparkSubmit"]["entryPointArguments"] == ["--config", "aws.yaml", *args]


def test_migrations_run_with_the_only_role_that_reads_the_master_secret(deployment, release):
    request = runs.start_job_run_request("migrate", deployment, release)
    assert (request["mode"], request["name"], request["executionRoleArn"]) == ("BATCH", "fraud-migrate", MIGRATE_ROLE)
    assert request["jobDriver"]["sparkSubmit"]["entryPoint"] == release.entry_points["migrate"]
    assert {runs.start_job_run_request(k, deployment, release)["executionRoleArn"]
            for k in runs.JOB_KINDS if k != "migrate"} == {ROLE, BATCH_ROLE}


def test_drift_request_runs_the_drift_job_in_batch(deployment, release):
    request = runs.start_job_run_request("drift", deployment, release)
    assert (request["mode"], request["name"]) == ("BATCH", "fraud-drift")
    assert request["jobDriver"]["sparkSubmit"]["entryPoint"] == release.entry_points["drift"]


def test_maintain_request_runs_the_maintenance_job_in_batch(deployment, release):
    request = runs.start_job_run_request("maintain", deployment, release)
    assert request["mode"] == "BATCH"
    assert request["name"] == "fraud-maintain"
    assert request["jobDriver"]["sparkSubmit"]["entryPoint"] == release.entry_points["maintain"]
    assert request["jobDriver"]["sparkSubmit"]["entryPointArguments"] == ["--config", "aws.yaml"]


@pytest.mark.parametrize("kwargs, message", [
    ({"max_failed_attempts_per_hour": 11}, "between 1 and 10"),
    ({"max_failed_attempts_per_hour": 0}, "between 1 and 10"),
])
def test_out_of_range_retry_policy_is_refused(deployment, release, kwargs, message):
    with pytest.raises(UserError, match=message):
        runs.start_job_run_request("stream", deployment, release, **kwargs)


@pytest.mark.parametrize("change, message", [
    ({"mode": "NOT_A_MODE"}, "mode: 'NOT_A_MODE' is not one of BATCH, STREAMING"),
    ({"clientToken": "t" * 200}, "clientToken: length 200 outside 1-64"),
    ({"clientToken": "has space"}, "clientToken: 'has space' does not match"),
    ({"retryPolicy": {"maxFailedAttemptsPerHour": 99}}, "retryPolicy.maxFailedAttemptsPerHour: 99 outside 1-10"),
    ({"applicationId": "APP-1"}, "applicationId: 'APP-1' does not match"),
    ({"executionRoleArn": "arn:aws:iam::123:role/x"}, "executionRoleArn: 'arn:aws:iam::123:role/x' does not match"),
    ({"tags": {"app": "fraud!"}}, "tags[app]: 'fraud!' does not match"),
])
def test_requests_the_service_would_refuse_are_refused_here(deployment, release, change, message):
    """What the Stubber lets through (types and required members only): patterns, enums, lengths
    and ranges from the service model botocore ships (emr.validation), checked before any call."""
    from emr.validation import problems, validate

    request = runs.start_job_run_request("stream", deployment, release)
    assert problems("emr-serverless", "StartJobRun", request) == []
    bad = {**request, **change}
    with Stubber(client("emr-serverless")) as stub:  # the Stubber accepts it as a valid request
        stub.add_response("start_job_run", {"applicationId": APP, "jobRunId": RUN, "arn": RUN_ARN}, bad)
        stub.client.start_job_run(**bad)
    with pytest.raises(UserError, match=re.escape(message)):
        validate("emr-serverless", "StartJobRun", bad)


def test_a_client_token_too_long_is_refused_when_the_request_is_built(deployment, release):
    with pytest.raises(UserError, match="invalid StartJobRun request: clientToken: length 200 outside 1-64"):
        runs.start_job_run_request("train", deployment, release, client_token="t" * 200)


def test_a_setting_with_whitespace_is_refused(deployment, release):
    from dataclasses import replace

    spaced = replace(deployment, job_environment={**JOB_ENVIRONMENT, "FRAUD_LAKE_ROOT": "s3://b/my lake"})
    with pytest.raises(UserError, match="FRAUD_LAKE_ROOT is empty or contains whitespace"):
        runs.start_job_run_request("stream", spaced, release)


def test_refused_submission_is_one_line(deployment, release):
    emr = client("emr-serverless")
    with Stubber(emr) as stub:
        stub.add_client_error("start_job_run", service_error_code="ValidationException",
                              service_message="Application is STOPPED", http_status_code=400)
        with pytest.raises(UserError, match="refused the job run: ValidationException: Application is STOPPED"):
            runs.submit(emr, runs.start_job_run_request("stream", deployment, release))


def job_run_response(state, details="Job run state changed"):
    return {"jobRun": {
        "applicationId": APP, "jobRunId": RUN, "arn": RUN_ARN, "createdBy": ROLE, "createdAt": 0, "updatedAt": 0,
        "executionRole": ROLE, "state": state, "stateDetails": details, "releaseLabel": "emr-spark-8.1.0",
        "jobDriver": {"sparkSubmit": {"entryPoint": "s3://b/stream_fraud.py"}}, "mode": "STREAMING", "attempt": 1,
    }}


class FakeClock:
    """Time that moves only when the poller sleeps: no real waiting in tests."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


def test_wait_polls_with_growing_backoff_until_running():
    emr, clock, seen = client("emr-serverless"), FakeClock(), []
    with Stubber(emr) as stub:
        for state in ("SUBMITTED", "PENDING", "PENDING", "SCHEDULED", "RUNNING"):
            stub.add_response("get_job_run", job_run_response(state), {"applicationId": APP, "jobRunId": RUN})
        run = runs.wait(emr, APP, RUN, sleep=clock.sleep, clock=clock, report=lambda r: seen.append(r["state"]))
        stub.assert_no_pending_responses()
    assert run["state"] == "RUNNING"
    assert clock.sleeps == [5, 7.5, 11.25, 16.875]
    assert seen == ["SUBMITTED", "PENDING", "SCHEDULED", "RUNNING"]


def test_wait_stops_at_a_final_state_and_at_the_timeout():
    emr, clock = client("emr-serverless"), FakeClock()
    with Stubber(emr) as stub:
        stub.add_response("get_job_run", job_run_response("FAILED", "Job failed: OOM"))
        assert runs.wait(emr, APP, RUN, sleep=clock.sleep, clock=clock)["stateDetails"] == "Job failed: OOM"
    clock = FakeClock()
    with Stubber(emr) as stub:
        for _ in range(7):
            stub.add_response("get_job_run", job_run_response("PENDING"))
        with pytest.raises(UserError, match=f"job run {RUN} still PENDING after 100 s"):
            runs.wait(emr, APP, RUN, timeout_s=100, max_delay_s=30, sleep=clock.sleep, clock=clock)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [5, 7.5, 11.25, 16.875, 25.3125, 30]
    assert clock.now <= 100


def test_cancel_with_grace_period_and_a_missing_run(deployment):
    emr = client("emr-serverless")
    with Stubber(emr) as stub:
        stub.add_response("cancel_job_run", {"applicationId": APP, "jobRunId": RUN},
                          {"applicationId": APP, "jobRunId": RUN, "shutdownGracePeriodInSeconds": 120})
        runs.cancel(emr, APP, RUN, grace_period_s=120)
        stub.add_client_error("cancel_job_run", service_error_code="ResourceNotFoundException",
                              service_message="Job run not found", http_status_code=404)
        with pytest.raises(UserError, match="cannot cancel job run .*ResourceNotFoundException"):
            runs.cancel(emr, APP, RUN)


def test_log_location_and_spark_ui_link(deployment):
    assert runs.log_location(deployment, APP, RUN) == (
        f"s3://fraud-dev-artifacts-123456789012/logs/applications/{APP}/jobs/{RUN}/")
    emr = client("emr-serverless")
    with Stubber(emr) as stub:
        stub.add_response("get_dashboard_for_job_run", {"url": "https://p-abc.emrappui-prod.us-east-1.amazonaws.com/x"},
                          {"applicationId": APP, "jobRunId": RUN})
        assert runs.dashboard_url(emr, APP, RUN).startswith("https://")


# --- command line ---------------------------------------------------------------------

def cli(*args):
    return subprocess.run([sys.executable, "-m", "emr", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_help_and_one_line_errors(outputs_file, tmp_path):
    assert cli("--help").returncode == 0
    assert "mode" not in cli("--help").stderr
    for args, message in [
        (("submit", "train", "--outputs", str(outputs_file)), "error: submit train needs --train-test-id"),
        (("status", RUN, "--outputs", str(tmp_path / "absent.json")), "error: Terraform outputs not found"),
        (("submit", "nightly"), "error: argument kind: invalid choice"),
        (("schedule", "stream"), "error: argument kind: invalid choice"),  # a stream runs, it is not scheduled
    ]:
        result = cli(*args)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def test_cli_submit_uploads_then_starts_the_stream(outputs_file, tmp_path, monkeypatch, capsys):
    """The whole `submit stream` path in process, with both AWS clients stubbed."""
    import emr.__main__ as main_module
    from fraud.jars import ensure_jars, spark_jars

    archive = tmp_path / "fraud_env.tar.gz"
    archive.write_bytes(gzip.compress(b"venv"))
    s3, emr = client("s3"), client("emr-serverless")
    uploads = 2 + len(ENTRY_POINTS) + len(spark_jars()) + len(ensure_jars("msk-iam"))
    monkeypatch.setattr(main_module, "_clients", lambda region: (s3, emr))
    with Stubber(s3) as s3_stub, Stubber(emr) as emr_stub:
        for _ in range(uploads):
            s3_stub.add_response("head_object", {"ContentLength": 1})
        emr_stub.add_response("start_job_run", {"applicationId": APP, "jobRunId": RUN, "arn": RUN_ARN})
        assert main_module.main(["submit", "stream", "--outputs", str(outputs_file), "--archive", str(archive)]) == 0
        s3_stub.assert_no_pending_responses()
        emr_stub.assert_no_pending_responses()
    out, err = capsys.readouterr()
    assert out.strip() == RUN
    assert f"logs: s3://fraud-dev-artifacts-123456789012/logs/applications/{APP}/jobs/{RUN}/" in err


@pytest.mark.parametrize("final, status", [("SUCCESS", 0), ("FAILED", 1)])
def test_cli_submit_wait_of_a_batch_run_waits_for_its_end(outputs_file, tmp_path, monkeypatch, final, status):
    """`submit migrate --wait`: a batch run that is RUNNING has not done its work yet (the stream
    would find the schema not migrated); the wait ends at its final state, and a failure exits 1."""
    import functools

    import emr.__main__ as main_module
    from fraud.jars import ensure_jars, spark_jars

    archive = tmp_path / "fraud_env.tar.gz"
    archive.write_bytes(gzip.compress(b"venv"))
    s3, emr, clock = client("s3"), client("emr-serverless"), FakeClock()
    monkeypatch.setattr(main_module, "_clients", lambda region: (s3, emr))
    monkeypatch.setattr(runs, "wait", functools.partial(runs.wait, sleep=clock.sleep, clock=clock))
    with Stubber(s3) as s3_stub, Stubber(emr) as emr_stub:
        for _ in range(2 + len(ENTRY_POINTS) + len(spark_jars()) + len(ensure_jars("msk-iam"))):
            s3_stub.add_response("head_object", {"ContentLength": 1})
        emr_stub.add_response("start_job_run", {"applicationId": APP, "jobRunId": RUN, "arn": RUN_ARN})
        for state in ("RUNNING", "RUNNING", final):
            emr_stub.add_response("get_job_run", job_run_response(state))
        assert main_module.main(["submit", "migrate", "--wait", "--outputs", str(outputs_file),
                                 "--archive", str(archive)]) == status
        emr_stub.assert_no_pending_responses()


def test_cli_schedule_writes_the_request_for_terraform_keeping_other_entries(outputs_file, tmp_path, monkeypatch):
    """`schedule maintain` uploads the release and writes the StartJobRun request the Terraform
    schedule sends (terraform/modules/schedules checks its application and role, adds a token per run)."""
    import emr.__main__ as main_module
    from fraud.jars import ensure_jars, spark_jars

    archive = tmp_path / "fraud_env.tar.gz"
    archive.write_bytes(gzip.compress(b"venv"))
    tfvars = tmp_path / "schedules.auto.tfvars.json"
    tfvars.write_text(json.dumps({"scheduled_jobs": {"retrain": {"schedule_expression": "rate(7 days)", "request": "{}"}},
                                  "other": 1}))
    s3, emr = client("s3"), client("emr-serverless")
    monkeypatch.setattr(main_module, "_clients", lambda region: (s3, emr))
    with Stubber(s3) as s3_stub, Stubber(emr) as emr_stub:
        for _ in range(2 + len(ENTRY_POINTS) + len(spark_jars()) + len(ensure_jars("msk-iam"))):
            s3_stub.add_response("head_object", {"ContentLength": 1})
        assert main_module.main(["schedule", "maintain", "--outputs", str(outputs_file), "--archive", str(archive),
                                 "--tfvars", str(tfvars)]) == 0
        s3_stub.assert_no_pending_responses()
        emr_stub.assert_no_pending_responses()  # nothing started
    written = json.loads(tfvars.read_text())
    assert written["other"] == 1 and set(written["scheduled_jobs"]) == {"retrain", "maintain"}
    entry = written["scheduled_jobs"]["maintain"]
    assert entry["schedule_expression"] == "cron(0 3 * * ? *)"
    request = json.loads(entry["request"])
    assert "clientToken" not in request
    assert (request["applicationId"], request["executionRoleArn"], request["mode"]) == (APP, BATCH_ROLE, "BATCH")
    assert request["jobDriver"]["sparkSubmit"]["entryPoint"].endswith("/maintain_lake.py")

    with pytest.raises(UserError, match="rate\\(...\\) or cron"):
        main_module.write_schedule(tfvars, "maintain", "every night", request)


def test_msk_iam_jar_is_shipped():
    from fraud.jars import ensure_jars

    names = [p.name for p in ensure_jars("msk-iam")]
    assert names == ["aws-msk-iam-auth-2.3.6.jar"]


def test_spark_jars_match_the_installed_pyspark_and_delta():
    """The jars the job ships belong to the installed pyspark and delta-spark (and so to the EMR
    release): Delta at delta-spark's version, the Kafka source of the same Spark line and no older
    (a later patch release may carry a fix, see scripts/jars/spark.pom.xml). A version moved in
    setup.cfg and not in the poms fails here."""
    from importlib.metadata import version

    from fraud.jars import ensure_jars

    def release(name: str, artifact: str) -> tuple[int, ...]:
        return tuple(int(part) for part in name.removeprefix(f"{artifact}-").removesuffix(".jar").split("."))

    names = {p.name for p in ensure_jars("spark")}
    assert f"delta-spark_2.13-{version('delta-spark')}.jar" in names
    assert f"delta-storage-{version('delta-spark')}.jar" in names
    spark = tuple(int(part) for part in version("pyspark").split("."))
    for artifact in ("spark-sql-kafka-0-10_2.13", "spark-token-provider-kafka-0-10_2.13"):
        (jar,) = [n for n in names if n.startswith(f"{artifact}-")]
        assert release(jar, artifact)[:2] == spark[:2] and release(jar, artifact) >= spark, jar


# --- archive recipe and cost ------------------------------------------------------------

def test_dockerfile_builds_on_amazon_linux_2023_with_the_pinned_venv_pack():
    dockerfile = (ROOT / "emr" / "Dockerfile").read_text()
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    pin = next(line for line in setup["options.extras_require"]["aws"].split() if line.startswith("venv-pack=="))
    assert "FROM public.ecr.aws/amazonlinux/amazonlinux:2023 AS build" in dockerfile
    assert "python3.11 -m venv" in dockerfile
    assert pin.startswith("venv-pack==") and 'pip install --no-cache-dir ".[aws]"' in dockerfile  # the aws extra
    assert "global-bundle.pem /opt/fraud-env/share/rds-ca.pem" in dockerfile  # conf/aws.yaml's ssl_root_cert
    assert "venv-pack -p /opt/fraud-env -o /out/fraud_env.tar.gz" in dockerfile


def test_cost_table_uses_the_stream_resources_and_is_the_one_in_the_deployment_guide():
    assert stream_resources() == (8, 32)  # driver and one executor, each 4 vCPU / 16 GB
    table = markdown_table()
    idle, normal = [float(x.strip("* ")) for x in table.splitlines()[-2].split("|")[2:4]]
    assert 0 < idle < normal
    emr_row = table.splitlines()[2].split("|")
    assert float(emr_row[2]) == 0.0
    assert float(emr_row[3]) == pytest.approx((8 * 0.052624 + 32 * 0.0057785) * 24, abs=0.005)
    assert table in (ROOT / "docs" / "deploy-aws.md").read_text()
    assert cli("cost").stdout.strip() == table
