"""One simulator run: generate events, send them (paced to Kafka, or flat out to a file), report.

``run_simulation`` is shared by the CLI and the Lambda-style ``handler``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from fraud.cli import UserError
from fraud.config import DOMAINS, Config
from fraud_simulator.generator import EventGenerator, SequenceRecord
from fraud_simulator.patterns import PATTERNS
from fraud_simulator.profile import DEFAULT_PROFILE, Profile

log = logging.getLogger(__name__)

# File mode is deterministic: without --start-time its event times start here.
FILE_MODE_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class RunOptions:
    domains: tuple[str, ...]
    rate_per_s: float
    events: int | None
    duration_s: float | None
    seed: int
    test_id: str
    load_level: str | None = None
    fraud_rate: float | None = None
    pattern_weights: dict[str, float] = field(default_factory=dict)
    output: str | None = None
    start_time: datetime | None = None
    profile: Profile = DEFAULT_PROFILE
    # After the events or duration, the sequences already started run to their end (none is cut).
    finish_sequences: bool = False

    @property
    def event_count(self) -> int:
        """The run's own events (``--events``, or rate x duration); finished sequences come on top."""
        return self.events if self.events is not None else round(self.duration_s * self.rate_per_s)

    def __post_init__(self):
        if not self.domains or any(d not in DOMAINS for d in self.domains):
            raise UserError(f"domain must be one of {', '.join(DOMAINS)} or all")
        if not self.rate_per_s > 0:
            raise UserError(f"rate must be positive, got {self.rate_per_s}")
        if (self.events is None) == (self.duration_s is None):
            raise UserError("give exactly one of --events or --duration")
        if self.events is not None and self.events <= 0:
            raise UserError(f"--events must be positive, got {self.events}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise UserError(f"--duration must be positive, got {self.duration_s}")
        if self.fraud_rate is not None and not 0.0 <= self.fraud_rate <= 1.0:
            raise UserError(f"--fraud-rate must be between 0 and 1, got {self.fraud_rate}")
        for name, weight in self.pattern_weights.items():
            if name not in PATTERNS:
                raise UserError(f"unknown pattern {name!r} in pattern weights")
            if weight < 0:
                raise UserError(f"pattern weight for {name} must not be negative")


@dataclass
class RunSummary:
    test_id: str
    mode: str
    domains: list[str]
    target_rate_per_s: float
    events_sent: int
    errors: int
    elapsed_s: float
    achieved_rate_per_s: float
    kept_rate: bool
    sequences: int
    fraud_sequences: int
    fraud_share: float
    fraud_share_by_domain: dict[str, float]
    events_by_domain: dict[str, int]

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_rate(config: Config, load_level: str | None, rate_per_s: float | None) -> float:
    """An explicit rate wins; otherwise the load level's events per minute."""
    if rate_per_s is not None:
        return rate_per_s
    levels = config.simulator.load_levels_per_min
    level = load_level or "normal"
    if level not in levels:
        raise UserError(f"unknown load level {level!r}: choose one of {', '.join(levels)}")
    return levels[level] / 60.0


def run_simulation(config: Config, options: RunOptions) -> RunSummary:
    fraud_share = dict(config.simulator.fraud_share)
    if options.fraud_rate is not None:
        fraud_share = {d: options.fraud_rate for d in DOMAINS}
    start = options.start_time or (FILE_MODE_START if options.output else datetime.now(timezone.utc))
    generator = EventGenerator(
        domains=options.domains, rate_per_s=options.rate_per_s, seed=options.seed, test_id=options.test_id,
        start_time=start, fraud_share=fraud_share, pattern_weights=options.pattern_weights, profile=options.profile,
        events=options.event_count,
        finish_sequences=options.finish_sequences,
    )
    if options.output:
        sink = FileSink(Path(options.output))
    else:
        sink = KafkaSink(config, options)
    return _drive(generator, sink, options)


class FileSink:
    """JSON lines, unpaced: history for training."""

    mode = "file"
    paced = False

    def __init__(self, path: Path):
        try:
            self._out = path.open("w", encoding="utf-8")
        except OSError as err:
            raise UserError(f"cannot write {path}: {err.strerror}") from None

    def send(self, domain: str, event: dict) -> None:
        self._out.write(json.dumps(event, separators=(",", ":")) + "\n")

    def sequences_done(self, records: list[SequenceRecord]) -> None:
        pass

    def serve(self, wait_s: float) -> None:
        pass

    def flush(self, sent: int) -> tuple[int, int]:
        self._out.close()
        return sent, 0

    def finish(self, summary: RunSummary) -> None:
        pass


class KafkaSink:
    """Idempotent, batched, asynchronous producer with delivery callbacks, plus the manifest."""

    mode = "kafka"
    paced = True

    def __init__(self, config: Config, options: RunOptions | None):
        """``options=None``: replaying a file, no manifest (the events carry their ground truth)."""
        from confluent_kafka import Producer

        from fraud.db import connect, postgres_dsn
        from fraud.kafka import client_settings, require_broker
        from fraud_simulator.manifest import Manifest

        settings = client_settings(config)
        require_broker(settings)
        self._topics = config.kafka.topics
        self._producer = Producer({
            **settings,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": config.simulator.linger_ms,
            "batch.num.messages": 10000,
            # The topics refuse a record batch over max_record_bytes and its framing (fraud.kafka).
            "batch.size": config.stream.max_record_bytes,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500000,
        })
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None
        self._chunk = config.simulator.manifest_chunk
        self._pending: list[SequenceRecord] = []
        self._conn = self._manifest = None
        if options is not None:
            self._conn = connect(postgres_dsn(config, "simulator"))
            self._manifest = Manifest(self._conn, options.test_id)
            self._manifest.start(domains=options.domains, load_level=options.load_level,
                                 rate_per_s=options.rate_per_s, seed=options.seed, fraud_rate=options.fraud_rate)

    def _on_delivery(self, err, msg) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            self.last_error = str(err)

    def send(self, domain: str, event: dict) -> None:
        self.send_raw(domain, event["actor_id"], json.dumps(event, separators=(",", ":")).encode())

    def send_raw(self, domain: str, key: str, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(self._topics[domain], value=value, key=key.encode(),
                                       on_delivery=self._on_delivery)
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                self._producer.poll(0.05)

    def sequences_done(self, records: list[SequenceRecord]) -> None:
        if self._manifest is None:
            return
        self._pending.extend(records)
        if len(self._pending) >= self._chunk:
            self._manifest.add(self._pending)
            self._pending = []

    def serve(self, wait_s: float) -> None:
        self._producer.poll(wait_s)

    def flush(self, sent: int) -> tuple[int, int]:
        self.failed += self._producer.flush(60)
        return self.delivered, self.failed

    def finish(self, summary: RunSummary | None) -> None:
        if self._manifest is None:
            return
        try:
            self._manifest.add(self._pending)
            self._manifest.finish(
                status="completed" if self.failed == 0 else "failed",
                events_sent=self.delivered, errors=self.failed,
                achieved_rate_per_s=summary.achieved_rate_per_s, fraud_share=summary.fraud_share,
                message=self.last_error,
            )
        finally:
            self._conn.close()


def replay_file(config: Config, path: Path) -> int:
    """Send a file-mode history to Kafka as fast as the broker takes it (for training data)."""
    sink = KafkaSink(config, None)
    sent = 0
    try:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                event = json.loads(line)
                sink.send_raw(event["domain"], event["actor_id"], line.rstrip("\n").encode())
                sent += 1
                if sent % 10000 == 0:
                    sink.serve(0)
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    delivered, failed = sink.flush(sent)
    if failed:
        raise UserError(f"{failed} of {sent} events could not be delivered: {sink.last_error}")
    return delivered


def _drive(generator: EventGenerator, sink, options: RunOptions) -> RunSummary:
    progress = _Progress(options)
    events_by_domain: Counter = Counter()
    sequences: Counter = Counter()
    fraud_sequences: Counter = Counter()
    open_sequences: dict[str, SequenceRecord] = {}
    finished: list[SequenceRecord] = []
    sent = 0
    t0 = time.monotonic()
    paced_elapsed = None  # the time the run's own events took (finished sequences come after)
    for item in generator:
        if sent == generator.events:
            paced_elapsed = time.monotonic() - t0
        if sink.paced:
            # Hold each event until its slot; serve delivery callbacks while waiting. At least 1 ms
            # per wait (librdkafka's poll timeout is whole milliseconds: shorter waits returned at
            # once and the loop spun, a full core at 2,700 events/s); due events then go in bursts.
            while (ahead := t0 + item.offset_s - time.monotonic()) > 0:
                sink.serve(min(max(ahead, 0.001), 0.05))
        sink.send(item.domain, item.event)
        sent += 1
        events_by_domain[item.domain] += 1
        record = item.sequence
        if record.actor_id not in open_sequences:
            open_sequences[record.actor_id] = record
            sequences[item.domain] += 1
            fraud_sequences[item.domain] += record.is_fraud
        if item.sequence_done:
            finished.append(open_sequences.pop(record.actor_id))
            if len(finished) >= 1000:
                sink.sequences_done(finished)
                finished = []
        if sent % 1000 == 0:
            sink.serve(0)
            progress.update(sent, time.monotonic() - t0)
    delivered, failed = sink.flush(sent)
    elapsed = time.monotonic() - t0
    # Sequences cut off by the end of the run are recorded with the events actually sent.
    sink.sequences_done(finished + list(open_sequences.values()))
    total_seq, total_fraud = sum(sequences.values()), sum(fraud_sequences.values())
    paced_elapsed = paced_elapsed or elapsed
    achieved = min(delivered, generator.events) / paced_elapsed if paced_elapsed > 0 else 0.0
    summary = RunSummary(
        test_id=options.test_id, mode=sink.mode, domains=list(options.domains),
        target_rate_per_s=round(options.rate_per_s, 3), events_sent=delivered, errors=failed,
        elapsed_s=round(elapsed, 3), achieved_rate_per_s=round(achieved, 2),
        kept_rate=(not sink.paced) or abs(achieved - options.rate_per_s) <= 0.02 * options.rate_per_s,
        sequences=total_seq, fraud_sequences=total_fraud,
        fraud_share=round(total_fraud / total_seq, 4) if total_seq else 0.0,
        fraud_share_by_domain={d: round(fraud_sequences[d] / sequences[d], 4) for d in sorted(sequences)},
        events_by_domain=dict(sorted(events_by_domain.items())),
    )
    sink.finish(summary)
    progress.done(summary)
    return summary


class _Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, options: RunOptions):
        self._on = sys.stderr.isatty()
        self._total = options.event_count
        self._last = 0.0

    def update(self, sent: int, elapsed_s: float) -> None:
        if not self._on or elapsed_s - self._last < 0.5:
            return
        self._last = elapsed_s
        share = min(1.0, sent / self._total) if self._total else 0.0
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r[{bar:<30}] {share:4.0%} {sent:>10,} events {sent / max(elapsed_s, 1e-9):>9,.1f}/s")
        sys.stderr.flush()

    def done(self, summary: RunSummary) -> None:
        if self._on:
            sys.stderr.write("\n")
