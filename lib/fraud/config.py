"""Typed, frozen configuration parsed once from one YAML file per environment.

``load_config("conf/local.yaml")`` returns a ``Config``. Every key is checked
against the dataclasses below: a missing key, an unknown key or a value of the
wrong type raises ``ConfigError`` with one line naming the file and the key.

Deployments change a few settings through environment variables (see
``ENV_OVERRIDES``); they are applied before type checking, so they are checked too.
Secrets never appear here: only references (an env var name or a secret ARN).
Relative paths are resolved against the folder holding the config file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import yaml

from fraud import severity
from fraud.cli import UserError
from fraud.project import local_endpoint
from fraud.rules import rule_book

# Environment variable -> dotted config key it replaces.
ENV_OVERRIDES = {
    "FRAUD_KAFKA_BOOTSTRAP_SERVERS": "kafka.bootstrap_servers",
    "FRAUD_POSTGRES_DSN": "postgres.dsn",
    "FRAUD_POSTGRES_ADMIN_SECRET_ARN": "postgres.admin_secret_arn",
    "FRAUD_POSTGRES_SSL_ROOT_CERT": "postgres.ssl_root_cert",
    "FRAUD_DASH_ALB_ARN": "dashboard.oidc.alb_arn",
    "FRAUD_DASH_TRUSTED_HOSTS": "dashboard.trusted_hosts",  # comma-separated
    "FRAUD_LAKE_ROOT": "lake_root",
    "FRAUD_CHECKPOINT_ROOT": "checkpoint_root",
    "FRAUD_MODELS_ROOT": "models_root",
}

_LIST_OVERRIDES = {"dashboard.trusted_hosts"}

# A value of kafka.bootstrap_servers / postgres.dsn meaning "ask the local stack".
LOCAL_STACK = "local-stack"


def endpoint(value: str, service: str) -> str:
    """A configured endpoint as clients use it: ``local-stack`` becomes the running local stack's
    address for ``service`` ("kafka" or "postgres"); anything else is returned as configured.
    Resolved when a client connects, not when the file is read: the stack starts after its config
    is loaded, and may restart on other ports. Read from the stack's state file
    (``fraud.project.local_endpoint``): the job's package holds no code of the stack."""
    if value != LOCAL_STACK:
        return value
    address = local_endpoint(service)
    if address is None:
        raise UserError(f"the local stack's {service} is not running: run `python -m fraud_devstack up` (or make up)")
    return address


DOMAINS = ("gaming", "fintech", "ecommerce")


class ConfigError(UserError):
    """A config file that cannot be used, with the key at fault."""


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str
    security_protocol: str
    sasl_mechanism: str | None
    topics: dict[str, str]
    partitions: int
    # Replicas of each topic jobs/migrate.py creates (the cluster's min.insync.replicas is one less).
    replication_factor: int
    starting_offsets: str
    max_offsets_per_trigger: int
    fail_on_data_loss: bool

    def topic_list(self) -> list[str]:
        return [self.topics[d] for d in DOMAINS]


# postgres.auth: how each component's login role authenticates.
PGPASS = "pgpass"  # a password in a libpq password file (the local stack's)
IAM = "iam"        # an RDS IAM token its AWS role signs (fraud.secrets)


@dataclass(frozen=True)
class PostgresConfig:
    dsn: str
    auth: str
    admin_secret_arn: str | None
    admin_user: str | None
    ssl_root_cert: str | None
    pool_max_size: int
    connect_timeout_s: int
    outage_wait_s: int


@dataclass(frozen=True)
class SparkConfig:
    master: str | None
    app_name: str
    shuffle_partitions: int
    driver_memory: str | None
    ui_enabled: bool
    extra_conf: dict[str, str]


@dataclass(frozen=True)
class SimulatorConfig:
    load_levels_per_min: dict[str, int]
    fraud_share: dict[str, float]
    # Producer batching: wait up to this long to fill a batch (throughput vs latency).
    linger_ms: int
    # Ground-truth rows are written to PostgreSQL in chunks of this many sequences.
    manifest_chunk: int


@dataclass(frozen=True)
class StreamConfig:
    # Processing-time trigger of the continuous job, e.g. "1 second".
    trigger_interval: str
    # Records larger than this go to quarantine as "oversize" (the topics' max.message.bytes too).
    max_record_bytes: int
    # Outside [min_amount_usd, max_amount_usd] US dollars (at the currency table's rate) an amount is
    # impossible: quarantined. The floor keeps every ratio of amounts finite.
    min_amount_usd: float
    max_amount_usd: float
    # A contract string longer than this many characters is quarantined (``too_long:<field>``).
    max_string_chars: int
    # Event time sanity, relative to the record's Kafka timestamp.
    max_event_age_days: int
    max_future_skew_s: int
    # Velocity features look back this far in event time; actor state lives this long.
    velocity_window_s: int
    state_ttl_s: int
    # Append a batch's Delta tables concurrently (each append is idempotent on its own).
    parallel_sinks: bool
    # Batches waiting for the lake writer to take them (beside the group it is writing) before the
    # alert path waits too.
    lake_max_pending_batches: int
    # Batches arriving within this many seconds of the oldest waiting one go into the lake together,
    # one commit per table (0: a commit per batch).
    lake_commit_interval_s: float
    # Rows per Delta file written by one micro-batch (one write task each): fewer, larger files.
    rows_per_file: int
    # Attempts at a micro-batch that fails with an error that is not transient, before the records
    # that cause it are isolated into quarantine as ``unprocessable:<error>`` (fraud.isolation).
    max_batch_attempts: int


@dataclass(frozen=True)
class AlertsConfig:
    # A fraud-class prediction at or above this fraud score opens or extends an alert; null: the
    # threshold each model was registered with (chosen by training on held-out data).
    threshold: float | None
    # Severity floors by expected loss in US dollars (fraud.severity: the fraud probability times the
    # amount, summed over an alert's transactions), highest first; below the last: "low".
    severity: dict[str, float]
    # Rows of one actor and type further apart than this start a new episode (alert).
    episode_gap_s: int
    # Each alerted transaction carries the inputs that raised its predicted class's probability
    # the most (fraud.driver_scorer: tree-path contributions), this many, largest first.
    top_features: int
    max_retries: int
    retry_backoff_s: float


@dataclass(frozen=True)
class RulesConfig:
    """Typology rules beside the model (fraud.rules)."""

    # A rules file of your own (the packaged catalogue, fraud/reference/typologies.yaml, when null).
    file: str | None
    # Rules evaluated and counted but never alerting, as the challenger is.
    shadow: tuple[str, ...]
    # Rules not evaluated at all.
    disabled: tuple[str, ...]


@dataclass(frozen=True)
class OutOfProfileGate:
    """Traffic the model never trained on: events of a simulator profile no training run uses, kept
    as data in the model registry (``fraud.registry``: written by ``python -m fraud_simulator.history``)
    and put through the stream's chain in batch at training time. Per domain, sequence recall and
    alert precision at the model's threshold must reach the floors."""

    profile: str  # what the history writer generates: a packaged profile name or a profile file
    seed: int
    events: int
    min_recall: float
    min_precision: float


@dataclass(frozen=True)
class GateConfig:
    # Event level, on the decisions at the model's alert threshold.
    min_accuracy: float
    min_weighted_f1: float
    min_macro_f1: float
    min_class_f1: float
    # Per domain on the held-out runs: fraud sequences caught, alerts of the right type.
    min_sequence_recall: float
    min_alert_precision: float
    out_of_profile: OutOfProfileGate


@dataclass(frozen=True)
class ModelConfig:
    num_trees: int
    max_depth: int
    max_bins: int
    min_instances_per_node: int
    subsampling_rate: float
    # Features tried per split: "onethird" measured steadier than the default sqrt (fraud/model/forest.py).
    feature_subset_strategy: str
    seed: int
    # Row weight (inverse class frequency) ** power: 0 = none, 1 = fully balanced classes.
    class_weight_power: float
    gate: GateConfig


@dataclass(frozen=True)
class OidcConfig:
    """The ALB's OIDC login in front of the Dash app (dash_app.identity)."""

    alb_arn: str  # every token's ``signer`` (its region is the key endpoint's)
    # Where the ALB's public key for a key id is (PEM); {region} and {kid} are filled in.
    public_keys_url: str = "https://public-keys.auth.elb.{region}.amazonaws.com/{kid}"
    # The claim listing the user's groups, and the groups that make a viewer, an analyst or an admin:
    # a signed-in user in none of them is refused (403), whoever the identity provider lets sign in.
    groups_claim: str = "groups"
    viewer_groups: tuple[str, ...] = ("fraud-viewers",)
    analyst_groups: tuple[str, ...] = ("fraud-analysts",)
    admin_groups: tuple[str, ...] = ("fraud-admins",)
    max_clock_skew_s: int = 60
    # A key id the endpoint did not serve is not asked for again for this long: one bad token must
    # not make every login wait for the endpoint.
    key_failure_ttl_s: int = 30
    # Refuse (403) a token whose ``email`` the identity provider does not say it verified
    # (``email_verified``); false only for a provider that never sends the claim.
    require_verified_email: bool = True


@dataclass(frozen=True)
class DashboardConfig:
    # Loopback by default; any other address needs the login below.
    host: str
    port: int
    refresh_interval_s: int
    # KPIs (events/min, alerts/min, p95 latency) are computed over this trailing window.
    kpi_window_min: int
    feed_limit: int
    # Optional HTTP basic auth: the *names* of the environment variables holding the user
    # and password (null = no login). The values never appear in config.
    auth_user_env: str | None
    auth_password_env: str | None
    # Behind the ALB's OIDC login (AWS): identity and role from the token it signs.
    oidc: OidcConfig | None = None
    # Simulator runs the app may have going at once (a load test is a process at up to crisis load).
    max_concurrent_load_tests: int = 2
    # The host names the app answers to (the Host header); any other gets 400. A page of another
    # site whose name resolves to this address (DNS rebinding) is refused by it.
    trusted_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class CostsConfig:
    """Prices for the cost-per-1M-events estimate on the pipeline page (hourly list prices)."""

    currency: str
    vcpu_hour: float
    memory_gb_hour: float
    # Capacity the streaming job runs on.
    vcpus: float
    memory_gb: float
    # Always-on services around the job (Kafka, PostgreSQL), per hour.
    fixed_per_hour: float


@dataclass(frozen=True)
class ExpectedValues:
    """The values each enumerated field is expected to take; any other value fails its expectation."""

    payment_method: tuple[str, ...]
    item_type: tuple[str, ...]
    cart_category: tuple[str, ...]
    transfer_type: tuple[str, ...]


# What a contract-valid row failing an expectation of the event suite becomes.
FLAG, QUARANTINE = "flag", "quarantine"


@dataclass(frozen=True)
class QualityConfig:
    """Data quality (fraud.quality): the event suite on the stream, the training gate."""

    # Row-level expectations of the event suite on every batch (Spark expressions), results per
    # batch to PostgreSQL quality_results.
    enabled: bool
    # Expectation name -> "flag" (scored; the name joins the row's quality_flags in silver and gold)
    # or "quarantine" (not scored; reason "expectation:<name>"). Expectations not named: "flag".
    actions: dict[str, str]
    expected_values: ExpectedValues
    # Amounts above this many US dollars (at the currency table's rates), per domain, are flagged.
    max_amount_usd: dict[str, float]
    # The currency table (CSV: code,minor_units,per_usd,name); null: fraud's packaged ISO 4217 table.
    currencies_file: str | None
    # Event times further ahead of their Kafka timestamp than this are flagged (event_time_skew).
    max_clock_skew_s: int
    # The Great Expectations checkpoint itself on every Nth batch (0: never in the stream); it
    # costs seconds per run on the Spark engine, hence not on every batch.
    gx_every_n_batches: int
    # Rows of the batch the checkpoint validates (0: all).
    gx_sample_rows: int
    # A failing suite fails the batch (the query stops; it replays on restart) instead of only reporting.
    fail_stream_on_failure: bool
    # Great Expectations data docs are built here (null: none).
    data_docs_dir: str | None
    # Training gate: rows per class at least; share of "regular" rows within bounds.
    min_class_rows: int
    min_regular_share: float
    max_regular_share: float


@dataclass(frozen=True)
class PostgresRetention:
    """Days a row of each ever-growing PostgreSQL table is kept (fraud.maintenance.expire_rows)."""

    batch_metrics: int
    quality_results: int
    drift_results: int
    shadow_outcomes: int
    shadow_alerts: int
    rule_hits: int


@dataclass(frozen=True)
class MaintenanceConfig:
    """Upkeep of the lake and of PostgreSQL (fraud.maintenance, ``jobs/maintain_lake.py``)."""

    # VACUUM keeps every data file that a table version of the last this-many hours reads: time
    # travel, and readers that started before a compaction, work inside it. Delta refuses less than
    # 168 (7 days) unless its retention check is turned off.
    vacuum_retention_hours: float
    postgres_retention_days: PostgresRetention
    # Alerts closed by a verdict this many days ago move to the lake's alerts_archive table, with
    # their transactions and actions (fraud.maintenance.archive_closed_alerts).
    archive_closed_alerts_after_days: int


@dataclass(frozen=True)
class Config:
    environment: str
    lake_root: str
    checkpoint_root: str
    kafka: KafkaConfig
    postgres: PostgresConfig
    spark: SparkConfig
    simulator: SimulatorConfig
    stream: StreamConfig
    alerts: AlertsConfig
    rules: RulesConfig
    model: ModelConfig
    dashboard: DashboardConfig
    costs: CostsConfig
    quality: QualityConfig
    maintenance: MaintenanceConfig
    source_path: str = ""
    # Model registry location; optional, default <lake_root>/models (AWS keeps it in its own bucket).
    models_root: str | None = None

    def table_path(self, name: str) -> str:
        """Location of a lake table (bronze, quarantine, silver, gold) or the model registry."""
        return f"{self.lake_root.rstrip('/')}/{name}"


def load_config(path: str | os.PathLike, environ: typing.Mapping[str, str] | None = None) -> Config:
    """Parse ``path`` into a ``Config``, applying env overrides from ``environ`` (default os.environ)."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for var, key in ENV_OVERRIDES.items():
        if environ.get(var):
            value = environ[var]
            _set_dotted(raw, key, [v.strip() for v in value.split(",") if v.strip()] if key in _LIST_OVERRIDES else value)
    config = _build(Config, {**raw, "source_path": str(path)}, str(path), "")
    base = path.resolve().parent
    config = dataclasses.replace(
        config,
        lake_root=_resolve_location(config.lake_root, base),
        checkpoint_root=_resolve_location(config.checkpoint_root, base),
        models_root=_resolve_location(config.models_root, base) if config.models_root else None,
        quality=dataclasses.replace(
            config.quality,
            data_docs_dir=config.quality.data_docs_dir and _resolve_location(config.quality.data_docs_dir, base),
            currencies_file=config.quality.currencies_file and _resolve_location(config.quality.currencies_file, base)),
        rules=dataclasses.replace(config.rules, file=config.rules.file and _resolve_location(config.rules.file, base)),
    )
    _check_values(config, str(path))
    return config


def load_dataclass(cls: type, path: str | os.PathLike) -> Any:
    """A YAML file as the frozen dataclass ``cls``, checked key by key like a config file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}") from None
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not valid YAML") from None
    return _build(cls, raw, str(path), "")


def _check_values(config: Config, source: str) -> None:
    for key, mapping in (("kafka.topics", config.kafka.topics), ("simulator.fraud_share", config.simulator.fraud_share)):
        if sorted(mapping) != sorted(DOMAINS):
            raise ConfigError(f"{source}: {key}: needs exactly the domains {', '.join(DOMAINS)}")
    wrong = severity.problem(config.alerts.severity)
    if wrong:
        raise ConfigError(f"{source}: alerts.severity: {wrong}")
    try:
        rule_book(config.rules.file, config.rules.shadow, config.rules.disabled)
    except UserError as err:
        raise ConfigError(f"{source}: {err}") from None
    for domain, share in config.simulator.fraud_share.items():
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"{source}: simulator.fraud_share.{domain}: must be between 0 and 1, got {share}")
    if sorted(config.quality.max_amount_usd) != sorted(DOMAINS):
        raise ConfigError(f"{source}: quality.max_amount_usd: needs exactly the domains {', '.join(DOMAINS)}")
    if config.stream.max_batch_attempts < 2:
        raise ConfigError(f"{source}: stream.max_batch_attempts: must be at least 2 (one try, one after isolating"
                          f" the records that fail it), got {config.stream.max_batch_attempts}")
    for key in ("rows_per_file", "lake_max_pending_batches", "max_string_chars"):
        if getattr(config.stream, key) < 1:
            raise ConfigError(f"{source}: stream.{key}: must be at least 1, got {getattr(config.stream, key)}")
    if not 0 <= config.stream.lake_commit_interval_s < math.inf:
        raise ConfigError(f"{source}: stream.lake_commit_interval_s: must be 0 or more seconds, got"
                          f" {config.stream.lake_commit_interval_s}")
    if not 0 < config.stream.min_amount_usd < config.stream.max_amount_usd < math.inf:
        raise ConfigError(f"{source}: stream.min_amount_usd, max_amount_usd: need 0 < min < max, both finite")
    if config.postgres.auth not in (PGPASS, IAM):
        raise ConfigError(f"{source}: postgres.auth: must be {PGPASS} or {IAM}, got {config.postgres.auth!r}")
    if config.postgres.dsn != LOCAL_STACK:
        try:
            user = psycopg.conninfo.conninfo_to_dict(config.postgres.dsn).get("user")
        except psycopg.ProgrammingError:
            raise ConfigError(f"{source}: postgres.dsn: not a PostgreSQL connection string") from None
        if user:
            raise ConfigError(f"{source}: postgres.dsn: names the user {user!r}; leave it out: each component"
                              " connects as its own role (fraud_stream, fraud_dash, ...)")
    for name, action in config.quality.actions.items():
        if action not in (FLAG, QUARANTINE):
            raise ConfigError(f"{source}: quality.actions.{name}: must be {FLAG} or {QUARANTINE}, got {action!r}")


def _resolve_location(value: str, base: Path) -> str:
    """Make a local relative path absolute; leave URIs (s3://, file://) alone."""
    if "://" in value or Path(value).is_absolute():
        return value
    return str((base / value).resolve())


def _set_dotted(raw: dict, dotted: str, value: str) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'top level'}: expected a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for name, field in fields.items():
        key = prefix + name
        if name not in data:
            if field.default is not dataclasses.MISSING:
                continue
            raise ConfigError(f"{source}: {key}: missing")
        values[name] = _coerce(hints[name], data[name], source, key)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: {prefix}{unknown[0]}: unknown key")
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [t for t in options if t is not type(None)]
        return _coerce(inner, value, source, key)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, key + ".")
    if origin is dict:
        key_type, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key}: expected a mapping, got {value!r}")
        return {
            _coerce(key_type, k, source, key): _coerce(value_type, v, source, f"{key}.{k}")
            for k, v in value.items()
        }
    if origin is tuple:
        (item_type, _) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key}: expected a list, got {value!r}")
        return tuple(_coerce(item_type, v, source, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    else:
        raise TypeError(f"config type {hint!r} not supported")
    raise ConfigError(f"{source}: {key}: expected {hint.__name__}, got {value!r}")
