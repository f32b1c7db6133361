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
