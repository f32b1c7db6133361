"""The local stack: a real Kafka broker and a real PostgreSQL on 127.0.0.1.

``up`` is idempotent (starts what is not running, restarts what died), ``down``
stops everything it started, ``status`` reports endpoints and health. Ports and
pids are recorded in ``<stack dir>/state.json`` so other processes can find the
services (config value ``local-stack``).
"""

import json
import logging
from dataclasses import asdict
from pathlib import Path

from fraud.config import Config
from fraud.kafka import topic_config
from fraud_devstack.kafka_broker import BrokerState, KafkaBroker
from fraud_devstack.postgres_server import PostgresServer, PostgresState

log = logging.getLogger(__name__)


class Stack:
    def __init__(self, home: Path):
        self.home = home
        self.state_file = home / "state.json"
        self.kafka = KafkaBroker(home / "kafka")
        self.postgres = PostgresServer(home / "postgres")

    def _load(self) -> tuple[BrokerState | None, PostgresState | None]:
        try:
            raw = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None, None
        kafka = BrokerState(**raw["kafka"]) if raw.get("kafka") else None
        postgres = PostgresState(**raw["postgres"]) if raw.get("postgres") else None
        return kafka, postgres

    def _save(self, kafka: BrokerState | None, postgres: PostgresState | None) -> None:
        """The services' states and, for clients (``fraud.project.local_endpoint``), their addresses with
        the pid and command-line marker that tell a live service from a recycled pid."""
        self.home.mkdir(parents=True, exist_ok=True)
        endpoints = {}
        if kafka:
            endpoints["kafka"] = {"address": self.kafka.bootstrap(kafka), "pid": kafka.pid,
                                  "marker": str(self.kafka.config_file)}
        if postgres:
            endpoints["postgres"] = {"address": self.postgres.dsn(postgres), "pid": postgres.pid,
                                     "marker": str(self.postgres.data_dir)}
        payload = {"kafka": asdict(kafka) if kafka else None, "postgres": asdict(postgres) if postgres else None,
                   "endpoints": endpoints}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(self.state_file)

    def up(self, config: Config) -> dict:
        from fraud.db import migrate
        from fraud.roles import COMPONENTS, login

        kafka, postgres = self._load()
        postgres = self.postgres.start(postgres)
        self._save(kafka, postgres)
        migrate(self.postgres.dsn(postgres))
        self.postgres.set_login_passwords(postgres, [login(c) for c in COMPONENTS])
        kafka = self.kafka.start(kafka, config.kafka.topic_list(), config.kafka.partitions,
                                   topic_config(config))
        self._save(kafka, postgres)
        return self.status(config)

    def down(self) -> None:
        kafka, postgres = self._load()
        self.kafka.stop(kafka)
        self.postgres.stop(postgres)
        # Ports stay recorded so the next `up` reuses them; pids are gone.
        self._save(
            BrokerState(None, kafka.port, kafka.controller_port) if kafka else None,
            PostgresState(None, postgres.port) if postgres else None,
        )

    def stop_service(self, service: str) -> None:
        """Stop one service, keeping its ports recorded (fault-injection tests: an outage)."""
        kafka, postgres = self._load()
        if service == "postgres":
            self.postgres.stop(postgres)
        elif service == "kafka":
            self.kafka.stop(kafka)
        else:
            raise ValueError(service)

    def start_service(self, service: str, config: Config) -> None:
        """Start a service stopped with ``stop_service`` again, on its old ports when they are free."""
        kafka, postgres = self._load()
        if service == "postgres":
            postgres = self.postgres.start(PostgresState(None, postgres.port) if postgres else None)
        elif service == "kafka":
            prev = BrokerState(None, kafka.port, kafka.controller_port) if kafka else None
            kafka = self.kafka.start(prev, config.kafka.topic_list(), config.kafka.partitions,
                                   topic_config(config))
        else:
            raise ValueError(service)
        self._save(kafka, postgres)

    def status(self, config: Config) -> dict:
        kafka, postgres = self._load()
        kafka_up = self.kafka.is_running(kafka)
        pg_up = self.postgres.is_running(postgres)
        return {
            "kafka": {
                "bootstrap": self.kafka.bootstrap(kafka) if kafka else None,
                "healthy": kafka_up and KafkaBroker.healthy(self.kafka.bootstrap(kafka)),
                "pid": kafka.pid if kafka_up else None,
            },
            "postgres": {
                "dsn": self.postgres.dsn(postgres) if postgres else None,
                "healthy": pg_up and PostgresServer.healthy(self.postgres.dsn(postgres)),
                "pid": postgres.pid if pg_up else None,
            },
            "lake_root": config.lake_root,
            "checkpoint_root": config.checkpoint_root,
        }


def default_stack() -> Stack:
    from fraud.project import STACK_DIR

    return Stack(STACK_DIR)
