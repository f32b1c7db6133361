"""B2's load: simulator events generated before the measurement, replayed to Kafka at a paced rate.

The simulator costs 180-400 us of CPU per event (it builds every fraud pattern's sequences in
Python); on the two cores the job also runs on, that was load taken from the job under test.
Here the events are generated once into a file (off the clock, cached under ``var/bench``), and
a producer replays them: each event is one ``produce`` call of bytes already encoded, a few
microseconds. Its own CPU per event is reported apart (``producer_cpu_us_per_event``).

Every event's transaction and actor ids get the run's tag and the pass over the file as a prefix
(``<tag>.<pass>-``), so a replayed event is a new transaction of a new actor, never a retry of
one the job has seen.

    .venv/bin/python -m benchmarks.replay --events-file FILE --rate 4000 --duration 60 --tag step1
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from fraud.cli import UserError, run
from fraud.config import load_config
from fraud.project import ROOT

TICK_S = 0.005  # events due are sent in bursts every 5 ms


def events_file(config_path: Path, events: int, seed: int = 11) -> Path:
    """Simulator events of all three domains in file mode, generated once per (count, seed)."""
    path = ROOT / "var" / "bench" / f"replay-{events}-{seed}.jsonl"
    if not path.exists():
        partial = path.with_suffix(".partial")
        subprocess.run([sys.executable, "-m", "fraud_simulator", "--config", str(config_path), "--domain", "all",
                        "--events", str(events), "--seed", str(seed), "--output", str(partial)],
                       cwd=ROOT, check=True, capture_output=True)
        partial.rename(path)
    return path


def load(path: Path, topics: dict[str, str]) -> list[tuple[str, str, bytes]]:
    """(topic, key, value) per event, the value as the simulator wrote it."""
    out = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            event = json.loads(line)
            out.append((topics[event["domain"]], event["actor_id"], line.rstrip("\n").encode()))
    if not out:
        raise UserError(f"no events in {path}")
    return out


def renamed(value: bytes, key: str, tag: bytes) -> tuple[str, bytes]:
    value = value.replace(b'"transaction_id":"', b'"transaction_id":"' + tag, 1)
    value = value.replace(b'"actor_id":"', b'"actor_id":"' + tag, 1)
    return tag.decode() + key, value


def replay(config, events: list[tuple[str, str, bytes]], rate: float, seconds: float, tag: str) -> dict:
    """``rate`` events/s for ``seconds``; the events sent, the rate kept, the producer's CPU."""
    from confluent_kafka import Producer

    from fraud.kafka import client_settings, require_broker

    settings = client_settings(config)
    require_broker(settings)
    producer = Producer({**settings, "enable.idempotence": True, "acks": "all", "linger.ms": config.simulator.linger_ms,
                         "batch.num.messages": 10000, "compression.type": "lz4",
                         "batch.size": config.stream.max_record_bytes,
                         "queue.buffering.max.messages": 1000000})
    total = int(rate * seconds)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    sent, t0 = 0, time.monotonic()
    while sent < total:
        due = min(total, int((time.monotonic() - t0) * rate) + 1)
        while sent < due:
            n_pass, i = divmod(sent, len(events))
            topic, key, value = events[i]
            key, value = renamed(value, key, b"%s.%d-" % (tag.encode(), n_pass))
            try:
                producer.produce(topic, value=value, key=key.encode())
                sent += 1
            except BufferError:  # the local queue is full: let deliveries drain
                producer.poll(0.01)
        producer.poll(0)
        time.sleep(TICK_S)
    paced_s = time.monotonic() - t0
    undelivered = producer.flush(60)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    achieved = sent / paced_s
    return {"sent": sent, "undelivered": undelivered, "seconds": round(paced_s, 2),
            "achieved_rate_per_s": round(achieved, 1), "kept_rate": abs(achieved - rate) <= 0.02 * rate,
            "producer_cpu_us_per_event": round(cpu_s * 1e6 / sent, 2) if sent else None,
            "passes": -(-total // len(events))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "conf" / "local.yaml"))
    parser.add_argument("--events-file", required=True, help="simulator events (JSON lines, --output mode)")
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--tag", required=True, help="prefix of this run's ids (give each run its own)")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0:
        raise UserError("--rate and --duration must be positive")
    config = load_config(args.config)
    events = load(Path(args.events_file), config.kafka.topics)
    print(json.dumps(replay(config, events, args.rate, args.duration, args.tag)))


if __name__ == "__main__":
    run(main)
