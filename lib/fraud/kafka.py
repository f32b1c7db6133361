"""Kafka endpoints and client settings, shared by the simulator (producer) and the job (Spark source)."""

import os
import re
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from fraud.cli import UserError
from fraud.config import Config, endpoint


def bootstrap_servers(config: Config) -> str:
    return endpoint(config.kafka.bootstrap_servers, "kafka")


# MSK broker host names end in ".kafka.<region>.amazonaws.com" (also ".kafka-serverless.").
_MSK_REGION = re.compile(r"\.kafka(?:-serverless)?\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?::\d+)?$")


def client_settings(config: Config) -> dict[str, Any]:
    """librdkafka settings (confluent-kafka) for this environment's broker and security.

    For MSK IAM the settings carry ``oauth_cb``, a callable that signs a fresh token
    with the caller's AWS credentials whenever librdkafka asks for one.
    """
    servers = bootstrap_servers(config)
    settings: dict[str, Any] = {
        "bootstrap.servers": servers,
        "security.protocol": config.kafka.security_protocol,
    }
    if config.kafka.sasl_mechanism == "AWS_MSK_IAM":
        # librdkafka speaks IAM through OAUTHBEARER with an MSK token provider.
        settings["sasl.mechanism"] = "OAUTHBEARER"
        settings["oauth_cb"] = msk_iam_token_callback(msk_region(servers))
    elif config.kafka.sasl_mechanism:
        settings["sasl.mechanism"] = config.kafka.sasl_mechanism
    return settings


def msk_region(servers: str, environ: dict[str, str] | None = None) -> str:
    """The AWS region of an MSK cluster: from its broker host names, else AWS_REGION / AWS_DEFAULT_REGION."""
    environ = os.environ if environ is None else environ
    first = servers.split(",")[0].strip()
    match = _MSK_REGION.search(first)
    region = match.group(1) if match else environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise UserError(f"cannot tell the AWS region of the MSK brokers {first!r}: set AWS_REGION")
    return region


def msk_iam_token_callback(region: str) -> Callable[[str | None], tuple[str, float]]:
    """An ``oauth_cb`` for confluent-kafka: (token, expiry in seconds since the epoch).

    The token is a SigV4-presigned ``kafka-cluster:Connect`` request signed with the
    default AWS credential chain (the job or task role in AWS), resolved once per client
    and refreshed by botocore when temporary; nothing is logged.
    """
    try:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
    except ImportError:
        raise UserError("MSK IAM needs aws-msk-iam-sasl-signer-python: pip install '.[aws]'") from None
    import botocore.session
    from botocore.credentials import CredentialProvider

    class DefaultChain(CredentialProvider):
        METHOD = "fraud-default-chain"

        def __init__(self):
            super().__init__()
            self._session = botocore.session.Session()

        def load(self):
            credentials = self._session.get_credentials()
            if credentials is None:
                raise UserError("MSK IAM: no AWS credentials found (role, profile or environment)")
            return credentials.get_frozen_credentials()

    provider = DefaultChain()

    def oauth_cb(_oauth_config: str | None) -> tuple[str, float]:
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_credentials_provider(region, provider)
        return token, expiry_ms / 1000.0

    return oauth_cb


def require_broker(settings: dict[str, Any], timeout_s: float = 5.0) -> None:
    """Fail with one line if no broker answers at the configured address."""
    admin = AdminClient({**settings, "log_level": 0})
    # Serves a pending OAUTHBEARER token request (MSK IAM) before the first metadata call.
    admin.poll(0)
    try:
        admin.list_topics(timeout=timeout_s)
    except Exception:  # KafkaException or a transport error: the broker is not usable
        raise UserError(
            f"Kafka broker unreachable at {settings['bootstrap.servers']} (no answer within {timeout_s:g} s)"
        ) from None


# A record batch's framing beyond its values: the batch header (61 bytes), each record's header and
# key (an actor id, at most stream.max_string_chars x 4 bytes). A record of max_record_bytes fits.
RECORD_FRAMING_BYTES = 2048


def topic_config(config: Config) -> dict[str, str]:
    """The settings every topic is created with: the broker refuses a record larger than the
    contract's ``stream.max_record_bytes`` (with its framing) and a timestamp more than an hour
    ahead of its clock (Kafka 4's default, explicit for MSK 3.x, whose default is no bound)."""
    return {"max.message.bytes": str(config.stream.max_record_bytes + RECORD_FRAMING_BYTES),
            "message.timestamp.after.max.ms": str(3600 * 1000)}


def create_topics(settings: dict[str, Any], topics: list[str], partitions: int, replication: int,
                  config: dict[str, str]) -> list[str]:
    """Create the topics missing at the broker, ``partitions`` each with ``replication`` replicas and
    ``config`` (``topic_config``); the ones created. Brokers never auto-create topics, so a typo in a
    topic name fails loudly instead of making a new one; too few brokers for the replicas fails with
    one line, never with fewer."""
    admin = AdminClient({**settings, "log_level": 0})
    admin.poll(0)  # serves a pending OAUTHBEARER token request (MSK IAM)
    metadata = admin.list_topics(timeout=10)
    missing = [t for t in topics if t not in metadata.topics]
    new = [NewTopic(t, num_partitions=partitions, replication_factor=replication, config=config) for t in missing]
    for topic, future in (admin.create_topics(new).items() if new else []):
        try:
            future.result(timeout=30)
        except Exception as err:  # KafkaException: e.g. fewer live brokers than replicas
            raise UserError(f"cannot create topic {topic} ({partitions} partitions, {replication} replicas): "
                            f"{err}") from None
    return missing


def spark_source_options(config: Config) -> dict[str, str]:
    """Options of Spark's Kafka source for the three topics."""
    options = {
        "kafka.bootstrap.servers": bootstrap_servers(config),
        "kafka.security.protocol": config.kafka.security_protocol,
        "subscribe": ",".join(config.kafka.topic_list()),
        "startingOffsets": config.kafka.starting_offsets,
        "maxOffsetsPerTrigger": str(config.kafka.max_offsets_per_trigger),
        "failOnDataLoss": str(config.kafka.fail_on_data_loss).lower(),
        # A micro-batch reads offsets known to exist, yet some fetches sat out the broker's default
        # 500 ms wait (measured: the state step of a normal-load batch 1.1 s -> 0.62 s with 10 ms).
        "kafka.fetch.max.wait.ms": "10",
    }
    if config.kafka.sasl_mechanism == "AWS_MSK_IAM":
        # The aws-msk-iam-auth jar (added by the EMR submission) signs with the job role.
        options.update({
            "kafka.sasl.mechanism": "AWS_MSK_IAM",
            "kafka.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
            "kafka.sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
        })
    return options
