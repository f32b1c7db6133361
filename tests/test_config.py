import subprocess
import sys

import pytest

from fraud.config import ConfigError, load_config

from conftest import ROOT


def write(tmp_path, text):
    path = tmp_path / "conf.yaml"
    path.write_text(text)
    return path


def local_text():
    return (ROOT / "conf" / "local.yaml").read_text()


def test_shipped_configs_load():
    local = load_config(ROOT / "conf" / "local.yaml", environ={})
    aws = load_config(ROOT / "conf" / "aws.yaml", environ={})
    assert local.kafka.topic_list() == ["gaming-events", "fintech-transactions", "ecommerce-orders"]
    assert local.lake_root == str(ROOT / "var" / "lake")
    assert aws.lake_root.startswith("s3://")
    assert aws.postgres.admin_secret_arn.startswith("arn:aws:secretsmanager:")
    assert aws.spark.master is None


def test_config_is_frozen():
    config = load_config(ROOT / "conf" / "local.yaml", environ={})
    with pytest.raises(AttributeError):
        config.lake_root = "/elsewhere"


def test_environment_overrides_deployment_settings(tmp_path):
    environ = {
        "FRAUD_KAFKA_BOOTSTRAP_SERVERS": "b-1.example:9098",
        "FRAUD_POSTGRES_DSN": "postgresql://db.example/fraud",
        "FRAUD_LAKE_ROOT": "s3://bucket/lake",
        "FRAUD_CHECKPOINT_ROOT": str(tmp_path / "ck"),
    }
    config = load_config(ROOT / "conf" / "local.yaml", environ=environ)
    assert config.kafka.bootstrap_servers == "b-1.example:9098"
    assert config.postgres.dsn == "postgresql://db.example/fraud"
    assert config.lake_root == "s3://bucket/lake"
    assert config.checkpoint_root == str(tmp_path / "ck")


def test_trusted_hosts_come_from_a_comma_separated_variable_and_the_dash_app_refuses_none():
    from flask import Flask

    from dash_app.identity import refuse_other_sites
    from fraud.cli import UserError

    environ = {"FRAUD_DASH_TRUSTED_HOSTS": " fraud.example.com, fraud-alb-1.us-east-1.elb.amazonaws.com ,,"}
    config = load_config(ROOT / "conf" / "aws.yaml", environ=environ)
    assert config.dashboard.trusted_hosts == ("fraud.example.com", "fraud-alb-1.us-east-1.elb.amazonaws.com")
    assert load_config(ROOT / "conf" / "aws.yaml", environ={}).dashboard.trusted_hosts == ()
    for hosts in ((), ("fraud.example.com:443",), ("",)):
        with pytest.raises(UserError, match="dashboard.trusted_hosts .* must list the host names"):
            refuse_other_sites(Flask("t"), hosts)


def test_training_refuses_gate_events_of_other_traffic_than_the_config_names(tmp_path):
    from fraud.cli import UserError
    from fraud.model.training import gate_events
    from fraud.registry import Registry

    config = load_config(ROOT / "conf" / "local.yaml")
    registry = Registry(str(tmp_path / "models"))
    with pytest.raises(UserError, match="out-of-profile gate's events are not in the registry"):
        gate_events(config, registry)
    gate = config.model.gate.out_of_profile
    registry.write_gate_events(['{"a": 1}'], {"profile": "default", "seed": gate.seed})
    with pytest.raises(UserError, match="'default' seed .*model.gate.out_of_profile names"):
        gate_events(config, registry)
    registry.write_gate_events(['{"a": 1}', '{"b": 2}'], {"profile": gate.profile, "seed": gate.seed})
    assert gate_events(config, registry) == (['{"a": 1}', '{"b": 2}'],
                                             {"profile": gate.profile, "seed": gate.seed, "events": 2})


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("  partitions: 3\n", "", "kafka.partitions: missing"),
        ("  partitions: 3\n", "  partitions: three\n", "kafka.partitions: expected int, got 'three'"),
        ("  fail_on_data_loss: true\n", "  fail_on_data_loss: 7\n", "kafka.fail_on_data_loss: expected bool"),
        ("  ui_enabled: false\n", "  ui_enabled: false\n  colour: blue\n", "spark.colour: unknown key"),
        ("kafka:\n", "kafka: 5\nunused:\n", "kafka: expected a mapping"),
        ("  actions: {}\n", "  actions: {currency_known: drop}\n",
         "quality.actions.currency_known: must be flag or quarantine, got 'drop'"),
        ("    item_type: [", "    item_type: skin\n    x: [", "quality.expected_values.item_type: expected a list"),
        ("    fintech: 5000000\n", "", "quality.max_amount_usd: needs exactly the domains"),
        ("  auth: pgpass\n", "  auth: trust\n", "postgres.auth: must be pgpass or iam, got 'trust'"),
        ("  dsn: local-stack\n", "  dsn: postgresql://fraud_app@db.example/fraud\n",
         "postgres.dsn: names the user 'fraud_app'; leave it out: each component connects as its own role"),
        ("    high: 1000\n", "    high: 20000\n", "alerts.severity: needs critical >= high >= medium"),
        ("    medium: 100\n", "", "alerts.severity: needs exactly critical, high, medium, in that order"),
        ("    critical: 10000\n    high: 1000\n    medium: 100\n", "    critical: 0.9\n    high: 0.75\n    medium: 0.6\n",
         "alerts.severity: floors are dollars of expected loss (e.g. 10000, 1000, 100), not fraud scores: got 0.6"),
        ("  shadow: []\n", "  shadow: [no_such_rule]\n", "rules.shadow: no rule named 'no_such_rule'"),
        ("  max_batch_attempts: 3\n", "  max_batch_attempts: 1\n", "stream.max_batch_attempts: must be at least 2"),
        ("  min_amount_usd: 1.0e-6\n", "  min_amount_usd: 0\n", "stream.min_amount_usd, max_amount_usd: need 0 < min < max"),
    ],
)
def test_bad_values_name_the_key(tmp_path, old, new, message):
    assert old in local_text()
    path = write(tmp_path, local_text().replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "kafka: [unclosed\n"), environ={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml", environ={})


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    path = write(tmp_path, local_text())
    config = load_config(path, environ={"FRAUD_LAKE_ROOT": "relative/lake"})
    assert config.lake_root == str(tmp_path / "relative" / "lake")


def test_cli_reports_bad_config_in_one_line(tmp_path):
    path = write(tmp_path, local_text().replace("  partitions: 3\n", "  partitions: many\n", 1))
    result = subprocess.run(
        [sys.executable, "-m", "fraud_devstack", "status", "--config", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: kafka.partitions: expected int, got 'many'"
    ]


def test_the_currency_table_is_data(tmp_path):
    from fraud.cli import UserError
    from fraud.reference import currencies

    iso = currencies(None)
    assert (iso["JPY"].minor_units, iso["KWD"].minor_units, iso["USD"].per_usd) == (0, 3, 1.0)
    assert iso["JPY"].per_usd > 100 * iso["USD"].per_usd, "JPY amounts are ~150x their USD value"
    own = tmp_path / "currencies.csv"
    own.write_text("code,minor_units,per_usd,name\nUSD,2,1,US Dollar\nXBT,8,0.00001,Bitcoin\n")
    with pytest.raises(UserError, match=r"currencies.csv, line 3: needs a 3-letter upper-case code, 0-4 minor units"):
        currencies(str(own))
    path = write(tmp_path, local_text().replace("  currencies_file: null\n", "  currencies_file: currencies.csv\n"))
    assert load_config(path, environ={}).quality.currencies_file == str(own)
