"""Static checks of terraform/: every file parses, modules have their four files, variables
are typed and described, the security properties the design promises are in the code,
and checkov finds nothing (suppressions only in code, each with a reason).

No terraform binary or provider download is needed: python-hcl2 parses, checkov runs
from its own venv (.venv-checkov, made by scripts/setup.sh).
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
from hcl2 import SerializationOptions

from emr.deployment import JOB_ENVIRONMENT_KEYS
from fraud.config import load_config
from fraud.kafka import topic_config

from conftest import ROOT

TERRAFORM = ROOT / "terraform"
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())
ROOTS = [*MODULES, TERRAFORM / "environments" / "dev"]
TF_FILES = sorted(TERRAFORM.rglob("*.tf"))
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
_OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)


def parse(path: Path) -> dict:
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


def blocks(folder: Path, kind: str) -> dict:
    """All blocks of one kind in a folder: {"type.name" or "name": body}."""
    found = {}
    for path in sorted(folder.glob("*.tf")):
        for entry in parse(path).get(kind, []):
            for first, body in entry.items():
                if kind in ("resource", "data"):
                    for name, inner in body.items():
                        found[f"{first}.{name}"] = inner
                else:
                    found[first] = body
    return found


def test_the_expected_modules_exist():
    assert [p.name for p in MODULES] == [
        "dash_app", "emr_serverless", "job_iam", "kms", "msk", "network", "rds", "schedules", "storage"]
    assert len(TF_FILES) == 4 * len(ROOTS)


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path):
    assert parse(path), f"{path} is empty"


@pytest.mark.parametrize("folder", ROOTS, ids=lambda p: p.name)
def test_each_module_has_main_variables_outputs_versions(folder):
    assert sorted(p.name for p in folder.glob("*.tf")) == ["main.tf", "outputs.tf", "variables.tf", "versions.tf"]
    assert parse(folder / "versions.tf")["terraform"][0]["required_providers"][0]["aws"]["source"] == "hashicorp/aws"


@pytest.mark.parametrize("folder", ROOTS, ids=lambda p: p.name)
def test_variables_are_typed_and_described_and_outputs_described(folder):
    for name, body in blocks(folder, "variable").items():
        assert body.get("type"), f"{folder.name}: variable {name} has no type"
        assert len(body.get("description", "")) > 10, f"{folder.name}: variable {name} has no description"
        # Secrets are passed by reference only.
        assert not re.search(r"password|secret", name) or name.endswith("_arn") or name == "dash_oidc", name
    for name, body in blocks(folder, "output").items():
        assert len(body.get("description", "")) > 10, f"{folder.name}: output {name} has no description"
        assert "sensitive" not in body, f"{folder.name}: output {name} would carry a secret"


def test_provider_is_pinned_exactly_in_the_environment():
    versions = parse(TERRAFORM / "environments" / "dev" / "versions.tf")
    constraint = versions["terraform"][0]["required_providers"][0]["aws"]["version"]
    assert re.fullmatch(r"= \d+\.\d+\.\d+", constraint)


def test_environment_modules_resolve_to_folders():
    for name, body in blocks(TERRAFORM / "environments" / "dev", "module").items():
        assert (TERRAFORM / "environments" / "dev" / body["source"]).resolve().is_dir(), name


def test_job_environment_output_is_what_the_emr_client_expects():
    outputs = blocks(TERRAFORM / "environments" / "dev", "output")
    assert set(outputs["job_environment"]["value"]) == set(JOB_ENVIRONMENT_KEYS)
    assert {"region", "emr_application_id", "emr_stream_role_arn", "emr_batch_role_arn", "emr_migrate_role_arn",
            "artifacts_bucket"} <= set(outputs)


def test_emr_application_is_emr_spark_8_with_auto_start_stop_and_a_ceiling():
    folder = TERRAFORM / "modules" / "emr_serverless"
    app = blocks(folder, "resource")["aws_emrserverless_application.this"]
    assert blocks(folder, "variable")["release_label"]["default"] == "emr-spark-8.1.0"
    assert app["type"] == "spark"
    assert app["auto_start_configuration"] == [{"enabled": True}]
    assert app["auto_stop_configuration"][0]["enabled"] is True
    assert set(app["maximum_capacity"][0]) == {"cpu", "memory", "disk"}
    assert app["network_configuration"][0]["subnet_ids"] == "${var.subnet_ids}"


def test_msk_never_auto_creates_a_topic_and_an_acknowledged_write_is_on_two_brokers():
    msk = TERRAFORM / "modules" / "msk"
    heredoc = blocks(msk, "resource")["aws_msk_configuration.this"]["server_properties"]
    properties = dict(line.strip().split("=", 1) for line in heredoc.splitlines() if "=" in line)
    assert properties["auto.create.topics.enable"] == "false"
    assert (properties["default.replication.factor"], properties["min.insync.replicas"]) == ("3", "2")
    # The brokers refuse what the record contract calls oversize, as the topics migrate.py creates do.
    aws = topic_config(load_config(ROOT / "conf" / "aws.yaml", environ={}))
    assert properties["message.max.bytes"] == "${var.max_message_bytes}"
    assert str(blocks(msk, "variable")["max_message_bytes"]["default"]) == aws["max.message.bytes"]
    assert properties["log.message.timestamp.after.max.ms"] == aws["message.timestamp.after.max.ms"]
    [validation] = blocks(msk, "variable")["broker_count"]["validation"]
    assert validation["condition"] == "${var.broker_count >= 3}"


def test_msk_takes_only_iam_over_tls():
    cluster = blocks(TERRAFORM / "modules" / "msk", "resource")["aws_msk_cluster.this"]
    assert cluster["client_authentication"][0]["unauthenticated"] is False
    assert cluster["client_authentication"][0]["sasl"][0] == {"iam": True}
    transit = cluster["encryption_info"][0]["encryption_in_transit"][0]
    assert transit == {"client_broker": "TLS", "in_cluster": True}


def test_rds_is_private_and_its_password_never_passes_through_terraform():
    folder = TERRAFORM / "modules" / "rds"
    db = blocks(folder, "resource")["aws_db_instance.this"]
    assert db["manage_master_user_password"] is True
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True
    assert "password" not in db
    for path in TERRAFORM.rglob("*.tf"):
        assert not re.search(r"^\s*password\s*=", path.read_text(), re.M), path


def test_buckets_are_encrypted_versioned_and_private():
    res = blocks(TERRAFORM / "modules" / "storage", "resource")
    block = res["aws_s3_bucket_public_access_block.this"]
    assert all(block[k] is True for k in (
        "block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    assert res["aws_s3_bucket_versioning.this"]["versioning_configuration"][0]["status"] == "Enabled"
    sse = res["aws_s3_bucket_server_side_encryption_configuration.this"]["rule"][0]
    assert sse["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    purposes = blocks(TERRAFORM / "modules" / "storage", "variable")["noncurrent_version_days"]["default"]
    assert set(purposes) == {"lake", "checkpoints", "models", "artifacts"}


def test_job_roles_are_least_privilege_and_only_the_batch_role_writes_the_registry():
    """No wildcard action or resource; S3 only under the job's prefixes; MSK only this cluster and
    only for the stream; the stream reads the model registry and never writes it; each role connects
    to PostgreSQL as its own database user, and only the migrate role reads the master secret."""
    data = blocks(TERRAFORM / "modules" / "job_iam", "data")
    docs = {name: data[f"aws_iam_policy_document.{name}"]
            for name in ("job_run", "common", "stream", "batch", "migrate", "producer")}
    for doc in docs.values():
        for statement in doc["statement"]:
            resources = statement["resources"]
            resources = [resources] if isinstance(resources, str) else resources
            assert all(a != "*" and not a.endswith(":*") for a in statement["actions"]), statement
            assert "*" not in resources, statement
            for resource in resources:
                # Only module inputs (bucket, key, secret, cluster ARNs) and expressions over them.
                assert re.match(r"^\$\{(var\.|local\.|\[for )", resource), resource
    for role in ("stream", "batch"):
        assert docs[role]["source_policy_documents"] == ["${data.aws_iam_policy_document.common.json}"]
    for doc in ("common", "migrate"):
        assert docs[doc]["source_policy_documents"] == ["${data.aws_iam_policy_document.job_run.json}"]

    def sids(doc):
        return {s["sid"]: s for s in doc["statement"]}

    common, stream, batch = sids(docs["common"]), sids(docs["stream"]), sids(docs["batch"])
    job_run, migrate, producer = sids(docs["job_run"]), sids(docs["migrate"]), sids(docs["producer"])
    models = '${var.bucket_arns["models"]}/models/*'
    writes = [s for doc in (common, stream) for s in doc.values()
              if models in s["resources"] and set(s["actions"]) - {"s3:GetObject"}]
    assert writes == [], "the stream never writes the registry"
    assert batch["WriteModels"]["resources"] == [models]
    assert not any(a.startswith("kafka-cluster:") for s in (*common.values(), *batch.values(), *job_run.values())
                   for a in s["actions"])
    assert job_run["ReadJobArtifacts"]["resources"] == ['${var.bucket_arns["artifacts"]}/emr/*']
    assert stream["ReadTopics"]["resources"] == "${local.topic_arns}"
    assert stream["UseSparkConsumerGroups"]["resources"] == ["${var.group_arn_prefix}${var.consumer_group_prefix}*"]
    connects = {name: [s["resources"] for s in doc.values() if "rds-db:connect" in s["actions"]]
                for name, doc in (("stream", stream), ("batch", batch), ("producer", producer), ("migrate", migrate),
                                  ("common", common), ("job_run", job_run))}
    assert connects == {"stream": [['${local.db_user_arns["stream"]}']], "batch": [['${local.db_user_arns["batch"]}']],
                        "producer": [['${local.db_user_arns["simulator"]}']], "migrate": [], "common": [], "job_run": []}
    secret_readers = [name for name, doc in docs.items() for s in doc["statement"]
                      if any(a.startswith("secretsmanager:") for a in s["actions"])]
    assert secret_readers == ["migrate"] and migrate["ReadMasterSecret"]["resources"] == ["${var.db_secret_arn}"]
    assert set(migrate) == {"ReadMasterSecret", "DecryptMasterSecret", "ConnectToCluster", "CreateTopics"}
    assert set(migrate["CreateTopics"]["actions"]) == {"kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic"}
    assert not [s for doc in (stream, producer) for s in doc.values() if "kafka-cluster:CreateTopic" in s["actions"]]
    dash = [s for name, s in _statements(TERRAFORM / "modules" / "dash_app") if name.endswith(".task")]
    assert [s["resources"] for s in dash if "rds-db:connect" in s["actions"]] == [["${var.db_user_arn_prefix}fraud_dash"]]
    # Its load tests run the simulator with the producer policy: fraud_simulator and the topics.
    attached = blocks(TERRAFORM / "modules" / "dash_app", "resource")["aws_iam_role_policy_attachment.producer"]
    assert attached["policy_arn"] == "${var.producer_policy_arn}"
    env = blocks(TERRAFORM / "environments" / "dev", "module")
    assert env["dash"]["producer_policy_arn"] == "${module.job_iam.producer_policy_arn}"
    assert "module.dash.security_group_id" in env["msk"]["client_security_group_ids"]
    assert not any(a.startswith("secretsmanager:") for s in dash for a in s["actions"])


def test_schedules_start_emr_job_runs_directly_with_a_token_per_run_and_a_narrow_role():
    folder = TERRAFORM / "modules" / "schedules"
    resources, data = blocks(folder, "resource"), blocks(folder, "data")
    schedule = resources["aws_scheduler_schedule.job"]
    assert schedule["for_each"] == "${var.jobs}"
    [target] = schedule["target"]
    assert target["arn"] == "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
    assert "<aws.scheduler.execution-id>" in target["input"]  # EMR deduplicates runs by client token
    assert "var.application_id" in str(schedule["lifecycle"]) and "var.job_role_arn" in str(schedule["lifecycle"])
    [trust] = data["aws_iam_policy_document.assume"]["statement"]
    assert trust["principals"][0]["identifiers"] == ["scheduler.amazonaws.com"]
    assert {c["variable"] for c in trust["condition"]} == {"aws:SourceAccount", "aws:SourceArn"}
    statements = {s["sid"]: s for s in data["aws_iam_policy_document.start_jobs"]["statement"]}
    assert statements["StartJobRuns"]["resources"] == ["${var.application_arn}", "${var.application_arn}/jobruns/*"]
    assert statements["PassJobRole"]["resources"] == ["${var.job_role_arn}"]
    assert statements["PassJobRole"]["condition"][0]["values"] == ["emr-serverless.amazonaws.com"]
    env = blocks(TERRAFORM / "environments" / "dev", "module")["schedules"]
    assert env["job_role_arn"] == "${module.job_iam.batch_role_arn}" and env["jobs"] == "${var.scheduled_jobs}"


def test_dash_app_requires_an_oidc_login_before_forwarding():
    listener = blocks(TERRAFORM / "modules" / "dash_app", "resource")["aws_lb_listener.https"]
    actions = sorted(listener["default_action"], key=lambda a: a["order"])
    assert [a["type"] for a in actions] == ["authenticate-oidc", "forward"]
    assert actions[0]["authenticate_oidc"][0]["on_unauthenticated_request"] == "authenticate"
    assert listener["protocol"] == "HTTPS"


def test_dash_app_is_deployable_behind_a_rate_limit_with_access_logs():
    """The task runs the image's gunicorn with its config, accepts only this ALB's tokens, and is
    health-checked without a login; WAF rate-limits each client IP; the ALB logs every request."""
    dash = blocks(TERRAFORM / "modules" / "dash_app", "resource")
    task = dash["aws_ecs_task_definition.dash"]["container_definitions"]
    for expected in ('"FRAUD_DASH_CONFIG"', '"/app/conf/aws.yaml"', '"FRAUD_DASH_ALB_ARN"', "aws_lb.this.arn",
                     '"FRAUD_MODELS_ROOT"', "healthCheck", "var.health_check_path",
                     '"FRAUD_POSTGRES_SSL_ROOT_CERT"', '"/etc/ssl/rds-ca.pem"'):
        assert expected in task, expected
    assert "SECRET_ARN" not in task, "the app holds no database password"
    assert blocks(TERRAFORM / "modules" / "dash_app", "variable")["health_check_path"]["default"] == "/healthz"
    acl = dash["aws_wafv2_web_acl.dash"]
    rate = [r for r in acl["rule"] if "rate_based_statement" in r["statement"][0]]
    assert rate and rate[0]["action"] == [{"block": [{}]}]
    assert rate[0]["statement"][0]["rate_based_statement"][0]["aggregate_key_type"] == "IP"
    assert dash["aws_wafv2_web_acl_association.dash"]["resource_arn"] == "${aws_lb.this.arn}"
    assert dash["aws_lb.this"]["access_logs"][0]["enabled"] is True
    dockerfile = (ROOT / "dash_app" / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "python:dash_app.gunicorn_conf", "dash_app.app:server"]' in dockerfile
    assert "global-bundle.pem /etc/ssl/rds-ca.pem" in dockerfile  # the CA the task's sslmode=verify-full uses
    assert "USER 10001" in dockerfile and "HEALTHCHECK" in dockerfile


# What the EC2 API accepts in a security group's or a rule's description: an apostrophe there failed
# the first emulated apply once the VPC existed, and every plan and destroy after it.
EC2_DESCRIPTION = re.compile(r"^[0-9A-Za-z_ .:/()#,@\[\]+=&;{}!$*-]*$")
# Rules of a security group, inline or as resources of their own.
_GROUP_RULES = ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule", "aws_security_group_rule")


def security_group_descriptions():
    """(where, description) of every security group and rule, interpolations read as one letter."""
    for folder in ROOTS:
        for name, body in blocks(folder, "resource").items():
            kind = name.split(".")[0]
            if kind != "aws_security_group" and kind not in _GROUP_RULES:
                continue
            nested = [rule for side in ("ingress", "egress") for rule in body.get(side, [])
                      for rule in (rule.get("content", [rule]) if "content" in rule else [rule])]
            nested += [c for d in body.get("dynamic", []) for inner in d.values() for c in inner.get("content", [])]
            for entry in [body, *nested]:
                if "description" in entry:
                    yield f"{folder.name}/{name}", re.sub(r"\$\{[^}]*\}", "x", entry["description"])


def test_every_security_group_description_is_one_the_ec2_api_accepts():
    assert not EC2_DESCRIPTION.match("MSK brokers inside the VPC: the load tests' simulator")
    found = list(security_group_descriptions())
    assert len(found) > 20, "the walk reaches the groups' inline and dynamic rules"
    assert [(where, text) for where, text in found if not EC2_DESCRIPTION.match(text)] == []


def test_logging_is_turned_on_only_once_the_logs_bucket_lets_the_services_write():
    """S3 and the load balancer check their write permission on the logs bucket when logging is turned
    on: the bucket's policy comes first (a race the emulated apply found, make aws-sim)."""
    storage = TERRAFORM / "modules" / "storage"
    logging = blocks(storage, "resource")["aws_s3_bucket_logging.this"]
    assert "${aws_s3_bucket_policy.logs}" in logging.get("depends_on", [])
    assert "${aws_s3_bucket_policy.logs}" in blocks(storage, "output")["logs_bucket"].get("depends_on", [])


def _statements(folder: Path):
    for name, doc in blocks(folder, "data").items():
        if name.startswith("aws_iam_policy_document."):
            for statement in doc.get("statement", []):
                yield f"{folder.name}/{name}", statement


def test_every_service_trust_policy_names_this_account_and_the_job_uses_the_key_only_through_services():
    """Confused deputy: a service assumes a role only for this account's resources. The data key is
    used by the jobs only through S3 (kms:ViaService)."""
    trusts = 0
    for folder in MODULES:
        for name, statement in _statements(folder):
            services = [p for p in statement.get("principals", []) if p["type"] == "Service"]
            if "sts:AssumeRole" in statement.get("actions", []) and services:
                trusts += 1
                variables = {c["variable"] for c in statement.get("condition", [])}
                assert "aws:SourceAccount" in variables, name
    assert trusts >= 5
    job = {s.get("sid"): s for name, s in _statements(TERRAFORM / "modules" / "job_iam") if name.endswith(".job_run")}
    assert [c["variable"] for c in job["UseDataKey"]["condition"]] == ["kms:ViaService"]


def test_vpc_endpoints_only_serve_the_accounts_principals_and_buckets():
    network = TERRAFORM / "modules" / "network"
    endpoints = blocks(network, "resource")
    assert endpoints["aws_vpc_endpoint.s3"]["policy"] == "${data.aws_iam_policy_document.s3_endpoint.json}"
    assert endpoints["aws_vpc_endpoint.interface"]["policy"] == "${data.aws_iam_policy_document.interface_endpoint.json}"
    docs = blocks(network, "data")
    own = docs["aws_iam_policy_document.s3_endpoint"]["statement"][0]
    assert {c["variable"] for c in own["condition"]} == {"aws:PrincipalAccount", "aws:ResourceAccount"}
    interface = docs["aws_iam_policy_document.interface_endpoint"]["statement"]
    assert [c["variable"] for s in interface for c in s["condition"]] == ["aws:PrincipalAccount"]


def test_lake_and_registry_objects_are_audited_and_every_bucket_access_logged():
    storage = blocks(TERRAFORM / "modules" / "storage", "resource")
    trail = storage["aws_cloudtrail.data"]
    assert trail["enable_log_file_validation"] is True and trail["kms_key_id"] == "${var.kms_key_arn}"
    fields = {f["field"]: f for f in trail["advanced_event_selector"][0]["field_selector"]}
    assert fields["eventCategory"]["equals"] == ["Data"]
    assert "lake" in fields["resources.ARN"]["starts_with"] and "models" in fields["resources.ARN"]["starts_with"]
    logging = storage["aws_s3_bucket_logging.this"]
    assert logging["for_each"] == "${aws_s3_bucket.this}" and logging["target_bucket"] == "${aws_s3_bucket.logs.id}"


def run_checkov() -> dict:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} missing: run `make setup` (scripts/setup.sh installs checkov there)")
    # --skip-download: no calls to the vendor's platform (no network here, none needed).
    result = subprocess.run(
        [str(CHECKOV), "-d", str(TERRAFORM), "--framework", "terraform", "--skip-download", "--output", "json"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "BC_API_KEY": "", "LOG_LEVEL": "ERROR"},
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_finds_nothing_and_every_suppression_has_a_reason():
    report = run_checkov()
    failed = report["results"]["failed_checks"]
    assert report["summary"]["failed"] == 0, [(c["check_id"], c["resource"]) for c in failed]
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 200
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, f"{check['check_id']} on {check['resource']} skipped without a reason"


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on this machine")
def test_terraform_fmt_is_clean():
    result = subprocess.run(["terraform", "fmt", "-check", "-recursive", str(TERRAFORM)],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull})
    assert result.returncode == 0, result.stdout


def test_cost_model_describes_the_dev_defaults():
    """emr/prices.yaml prices what terraform/environments/dev deploys by default."""
    import yaml

    shape = yaml.safe_load((ROOT / "emr" / "prices.yaml").read_text())["deployment"]
    dev = blocks(TERRAFORM / "environments" / "dev", "variable")
    msk = blocks(TERRAFORM / "modules" / "msk", "variable")
    rds = blocks(TERRAFORM / "modules" / "rds", "variable")
    dash = blocks(TERRAFORM / "modules" / "dash_app", "variable")
    assert shape["msk_brokers"] == dev["msk_broker_count"]["default"]
    assert dev["msk_instance_type"]["default"] == "kafka.t3.small"
    assert shape["msk_storage_gb_per_broker"] == msk["volume_size_gb"]["default"]
    assert dev["rds_instance_class"]["default"] == "db.t4g.micro"
    assert shape["rds_storage_gb"] == rds["allocated_storage_gb"]["default"]
    assert shape["interface_endpoints"] == len(dev["interface_endpoints"]["default"])
    network = blocks(TERRAFORM / "modules" / "network", "variable")
    assert shape["nat_gateways"] == (1 if network["nat_gateway"]["default"] else 0)
    assert shape["availability_zones"] == len(dev["availability_zones"]["default"])
    assert shape["dash_task_vcpu"] * 1024 == dash["task_cpu"]["default"]
    assert shape["dash_task_gb"] * 1024 == dash["task_memory"]["default"]
    keys = [name for folder in MODULES for name in blocks(folder, "resource") if name.startswith("aws_kms_key.")]
    assert shape["kms_keys"] == len(keys)


def test_rds_parameters_serve_the_latency_metric_and_force_tls():
    group = blocks(TERRAFORM / "modules" / "rds", "resource")["aws_db_parameter_group.this"]
    parameters = {p["name"]: p["value"] for p in group["parameter"]}
    assert parameters["track_commit_timestamp"] == "1"  # pg_xact_commit_timestamp in fraud/metrics.py
    assert parameters["rds.force_ssl"] == "1"
