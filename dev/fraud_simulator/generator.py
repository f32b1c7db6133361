"""Interleaved actor sequences at an exact event rate, deterministic for a seed.

Time is cut into slots of ``1 / rate`` seconds and every slot carries exactly one
event, so a run's rate is the requested one by construction. At each slot the
sequence whose next event is due earliest emits it; when no event is due yet, a new
actor sequence starts in that slot. Concurrency therefore settles where the due
events match the rate, sequences interleave, and each event's timestamp is its
slot time (never earlier than its pattern's gap allows).

Fraud shares are per domain and per sequence. They are allotted in running quotas
(cumulative rounding), not coin flips, so any run of a few hundred sequences holds
the configured shares almost exactly; the order within a block is shuffled.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fraud_simulator.patterns import PATTERNS, Actor, Pattern, Step
from fraud_simulator.profile import DEFAULT_PROFILE, Profile, Surface

_ID_NAMESPACE = uuid.UUID("6f1c8a52-3c1e-4d8e-9a57-1f0b4de6a9c1")
_BLOCK = 100  # sequences per quota block and domain


@dataclass
class SequenceRecord:
    """Ground truth of one actor sequence, completed as its events are emitted."""

    test_id: str
    actor_id: str
    domain: str
    pattern: str
    is_fraud: bool
    transaction_ids: list[str] = field(default_factory=list)
    first_event_time: datetime | None = None
    last_event_time: datetime | None = None
    variant: str = ""  # the held-out variant drawn (fraud_simulator.variants), "" for the pattern itself


@dataclass
class Emitted:
    """One event ready to send, with its slot offset (seconds from run start)."""

    offset_s: float
    domain: str
    event: dict
    sequence: SequenceRecord
    sequence_done: bool


class QuotaPlanner:
    """Chooses the next sequence's pattern for one domain so shares track their targets."""

    def __init__(self, domain: str, fraud_share: float, weights: dict[str, float], rng: random.Random,
                 catalogue: dict[str, Pattern] = PATTERNS):
        patterns = [p for p in catalogue.values() if p.domain == domain]
        self._catalogue = catalogue
        fraud = [p for p in patterns if p.is_fraud]
        regular = [p for p in patterns if not p.is_fraud]
        self._expected: dict[str, float] = {}
        for group, share in ((fraud, fraud_share), (regular, 1.0 - fraud_share)):
            total = sum(weights.get(p.key, p.weight) for p in group)
            for p in group:
                self._expected[p.key] = share * weights.get(p.key, p.weight) / total if total else 0.0
        self._rng = rng
        self._blocks = 0
        self._queue: list[str] = []

    def next(self) -> Pattern:
        if not self._queue:
            k = self._blocks
            for name, share in self._expected.items():
                count = round(share * _BLOCK * (k + 1)) - round(share * _BLOCK * k)
                self._queue.extend([name] * count)
            self._rng.shuffle(self._queue)
            self._blocks += 1
        return self._catalogue[self._queue.pop()]


@dataclass
class _Active:
    due_s: float
    order: int  # tie-breaker: start order, so the heap never compares the rest
    steps: list[Step] = field(compare=False)
    position: int = field(compare=False)
    domain: str = field(compare=False)
    actor_id: str = field(compare=False)
    record: SequenceRecord = field(compare=False)

    def __lt__(self, other: _Active) -> bool:
        return (self.due_s, self.order) < (other.due_s, other.order)


class EventGenerator:
    """Yields ``Emitted`` events, one per slot, for the given domains and rate: ``events`` of them, then
    (``finish_sequences``) the rest of the sequences already started, each at its own pace, with no
    new one started, so every sequence of the run is whole."""

    def __init__(self, *, domains: tuple[str, ...], rate_per_s: float, seed: int, test_id: str,
                 start_time: datetime, fraud_share: dict[str, float], pattern_weights: dict[str, float],
                 events: int, finish_sequences: bool = False, profile: Profile = DEFAULT_PROFILE,
                 catalogue: dict[str, Pattern] = PATTERNS):
        self.events = events
        self.finish_sequences = finish_sequences
        self.domains = domains
        self.slot_s = 1.0 / rate_per_s
        self.test_id = test_id
        self.start_time = start_time
        self._rng = random.Random(seed)
        self._planners = {
            d: QuotaPlanner(d, fraud_share[d], pattern_weights, random.Random(f"{seed}/{d}"), catalogue) for d in domains
        }
        self._surface = Surface(profile, seed)
        self._tag = hashlib.sha1(test_id.encode()).hexdigest()[:6]
        self._started = 0
        self._emitted = 0

    def __iter__(self) -> Iterator[Emitted]:
        active: list[_Active] = []
        slot = 0
        while True:
            now_s = slot * self.slot_s
            if self._emitted >= self.events:
                if not self.finish_sequences or not active:
                    return
                slot = max(slot, math.ceil(active[0].due_s / self.slot_s - 1e-9))  # idle until the next is due
                now_s = slot * self.slot_s
            elif not active or active[0].due_s > now_s:
                heapq.heappush(active, self._start_sequence(now_s))
            seq = heapq.heappop(active)
            yield self._emit(seq, now_s)
            slot += 1
            seq.position += 1
            if seq.position < len(seq.steps):
                seq.due_s = max(now_s, seq.due_s) + seq.steps[seq.position].gap_s
                heapq.heappush(active, seq)

    def _start_sequence(self, now_s: float) -> _Active:
        domain = self.domains[self._started % len(self.domains)]
        pattern = self._planners[domain].next()
        actor_id = f"{domain[:2]}-{self._tag}{self._started:08d}"
        actor = Actor(actor_id, self._rng)
        steps = self._surface.apply(domain, pattern.draw(actor), lambda: pattern.draw(actor))
        record = SequenceRecord(self.test_id, actor_id, domain, pattern.name, pattern.is_fraud, variant=pattern.variant)
        self._started += 1
        return _Active(now_s, self._started, steps, 0, domain, actor_id, record)

    def _emit(self, seq: _Active, now_s: float) -> Emitted:
        timestamp = self.start_time + timedelta(seconds=now_s)
        transaction_id = str(uuid.uuid5(_ID_NAMESPACE, f"{self.test_id}/{self._emitted}"))
        event = {
            "transaction_id": transaction_id,
            "domain": seq.domain,
            "test_id": self.test_id,
            "timestamp": timestamp.isoformat(timespec="milliseconds"),
            "actor_id": seq.steps[seq.position].actor_id or seq.actor_id,
            "sequence_position": seq.position,
            "pattern": seq.record.pattern,
            "is_fraud": seq.record.is_fraud,
            **seq.steps[seq.position].fields,
        }
        record = seq.record
        record.transaction_ids.append(transaction_id)
        record.first_event_time = record.first_event_time or timestamp
        record.last_event_time = timestamp
        self._emitted += 1
        return Emitted(now_s, seq.domain, event, record, seq.position == len(seq.steps) - 1)
