"""A real single-node Apache Kafka broker in KRaft mode (combined broker + controller).

Runs the official jars from Maven Central (``fraud.jars``) with the system Java on
127.0.0.1 ports chosen at first start and kept while they stay free. Storage is
formatted once; data survives ``down``/``up``.
"""

import base64
import logging
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from fraud.cli import UserError
from fraud.jars import ensure_jars, jar_dir
from fraud.kafka import create_topics
from fraud_devstack.process import free_port, is_running, port_is_free, stop_group, tail, wait_until

log = logging.getLogger(__name__)

_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data_dir}
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
"""

_LOG4J2 = """\
status = error
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""

_JVM_OPTS = ["-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]


@dataclass
class BrokerState:
    pid: int | None
    port: int
    controller_port: int


class KafkaBroker:
    def __init__(self, home: Path):
        self.home = home
        self.data_dir = home / "data"
        self.config_file = home / "server.properties"
        self.log_file = home / "broker.log"

    def bootstrap(self, state: BrokerState) -> str:
        return f"127.0.0.1:{state.port}"

    def is_running(self, state: BrokerState | None) -> bool:
        return state is not None and is_running(state.pid, str(self.config_file))

    def start(self, previous: BrokerState | None, topics: list[str], partitions: int,
              topic_settings: dict[str, str]) -> BrokerState:
        """Start the broker (unless it already runs) and make sure ``topics`` exist (``fraud.kafka.topic_config``)."""
        if self.is_running(previous):
            state = previous
        else:
            if shutil.which("java") is None:
                raise UserError("Java 17 is needed to run the local Kafka broker; install a JDK")
            ensure_jars("kafka")
            state = self._launch(previous)
        for topic in create_topics({"bootstrap.servers": self.bootstrap(state)}, topics, partitions, 1,
                                   topic_settings):
            log.info("created topic %s (%d partitions)", topic, partitions)
        return state

    def _launch(self, previous: BrokerState | None) -> BrokerState:
        self.home.mkdir(parents=True, exist_ok=True)
        port, controller_port = (previous.port, previous.controller_port) if previous else (0, 0)
        # A broker that just died may hold its ports for a moment; keep them if they free up.
        if not (port and wait_until(lambda: port_is_free(port), 10)):
            port = free_port()
        if not (controller_port and controller_port != port and wait_until(lambda: port_is_free(controller_port), 10)):
            controller_port = free_port()
        self.config_file.write_text(
            _PROPERTIES.format(port=port, controller_port=controller_port, data_dir=self.data_dir)
        )
        (self.home / "log4j2.properties").write_text(_LOG4J2)
        if not (self.data_dir / "meta.properties").exists():
            self._format_storage()
        with open(self.log_file, "ab") as out:
            proc = subprocess.Popen(
                self._java("kafka.Kafka", str(self.config_file)),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.home, start_new_session=True,
            )
        state = BrokerState(pid=proc.pid, port=port, controller_port=controller_port)
        log.info("kafka broker starting on 127.0.0.1:%d (pid %d)", port, proc.pid)
        if not wait_until(lambda: proc.poll() is not None or self.healthy(self.bootstrap(state)), 90):
            stop_group(proc.pid)
            raise UserError(f"Kafka broker did not become ready in 90 s: {tail(self.log_file)}")
        if proc.poll() is not None:
            raise UserError(f"Kafka broker exited with {proc.returncode}: {tail(self.log_file)}")
        return state

    def _format_storage(self) -> None:
        # Kafka's own Uuid.randomUuid() never starts with "-": the tool would read it as an option.
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config_file)),
            capture_output=True, text=True, cwd=self.home,
        )
        if result.returncode != 0:
            raise UserError(f"formatting Kafka storage failed: {(result.stderr or result.stdout).strip()[-300:]}")

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            "java", *_JVM_OPTS,
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp", str(jar_dir("kafka") / "*"),
            main_class, *args,
        ]

    def stop(self, state: BrokerState | None) -> None:
        if self.is_running(state):
            stop_group(state.pid, timeout_s=30)

    @staticmethod
    def healthy(bootstrap: str, timeout_s: float = 2.0) -> bool:
        try:
            # log_level 0: a broker still starting is expected here, not worth a log line.
            client = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
            client.list_topics(timeout=timeout_s)
            return True
        except Exception:  # any client error means "not usable right now"
            return False
