"""Kafka endpoints and client settings, shared by the simulator (producer) and the job (Spark source)."""

from confluent_kafka.admin import AdminClient

from fraud.cli import UserError
from fraud.config import LOCAL_STACK, Config


def bootstrap_servers(config: Config) -> str:
    if config.kafka.bootstrap_servers == LOCAL_STACK:
        from fraud.stack import default_stack

        return default_stack().endpoint("kafka")
    return config.kafka.bootstrap_servers


def client_settings(config: Config) -> dict[str, str]:
    """librdkafka settings (confluent-kafka) for this environment's broker and security."""
    settings = {
        "bootstrap.servers": bootstrap_servers(config),
        "security.protocol": config.kafka.security_protocol,
    }
    if config.kafka.sasl_mechanism == "AWS_MSK_IAM":
        # librdkafka speaks IAM through OAUTHBEARER with an MSK token provider.
        settings["sasl.mechanism"] = "OAUTHBEARER"
    elif config.kafka.sasl_mechanism:
        settings["sasl.mechanism"] = config.kafka.sasl_mechanism
    return settings


def require_broker(settings: dict[str, str], timeout_s: float = 5.0) -> None:
    """Fail with one line if no broker answers at the configured address."""
    admin = AdminClient({**settings, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout_s)
    except Exception:  # KafkaException or a transport error: the broker is not usable
        raise UserError(
            f"Kafka broker unreachable at {settings['bootstrap.servers']} (no answer within {timeout_s:g} s)"
        ) from None


def spark_source_options(config: Config) -> dict[str, str]:
    """Options of Spark's Kafka source for the three topics."""
    options = {
        "kafka.bootstrap.servers": bootstrap_servers(config),
        "kafka.security.protocol": config.kafka.security_protocol,
        "subscribe": ",".join(config.kafka.topic_list()),
        "startingOffsets": config.kafka.starting_offsets,
        "maxOffsetsPerTrigger": str(config.kafka.max_offsets_per_trigger),
        "failOnDataLoss": str(config.kafka.fail_on_data_loss).lower(),
    }
    if config.kafka.sasl_mechanism == "AWS_MSK_IAM":
        # The aws-msk-iam-auth jar (added by the EMR submission) signs with the job role.
        options.update({
            "kafka.sasl.mechanism": "AWS_MSK_IAM",
            "kafka.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
            "kafka.sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
        })
    return options
