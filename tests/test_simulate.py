"""The simulator: contract, pattern signatures, shares, determinism, CLI errors."""

import json
import random
import subprocess
import sys
from collections import Counter, defaultdict

import pytest

from fraud.schemas import event_schema, contract_violations
from fraud_simulator.patterns import PATTERNS, Actor

from conftest import ROOT

VPN_PREFIXES = ("185.220.101.", "104.28.14.", "45.86.200.", "193.32.126.", "89.187.175.")


def simulate(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "fraud_simulator", *args], capture_output=True, text=True,
                            timeout=600, cwd=ROOT)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """50,000 events from the CLI in file mode (the issue's must-show command)."""
    path = tmp_path_factory.mktemp("sim") / "x.jsonl"
    simulate("--domain", "all", "--events", "50000", "--seed", "1", "--output", str(path))
    return [json.loads(line) for line in path.read_text().splitlines()]


def sequences(pattern: str, count: int = 300, seed: int = 11) -> list[list[dict]]:
    rng = random.Random(seed)
    return [[s.fields for s in PATTERNS[pattern].draw(Actor(f"xx-{i:06d}", rng))] for i in range(count)]


# --- contract -------------------------------------------------------------------

def test_every_line_is_contract_valid_with_only_contract_fields(history):
    assert len(history) == 50_000
    for event in history:
        assert contract_violations(event) == [], event
        assert set(event) == set(event_schema(event["domain"]).fieldNames()), "producer writes only contract fields"
    assert len({e["transaction_id"] for e in history}) == len(history)
    assert Counter(e["domain"] for e in history).keys() == {"gaming", "ecommerce", "fintech"}


def test_sequences_are_interleaved_in_event_time(history):
    timestamps = [e["timestamp"] for e in history]
    assert timestamps == sorted(timestamps)
    by_actor = defaultdict(list)
    for index, event in enumerate(history):
        by_actor[event["actor_id"]].append((index, event["sequence_position"], event["pattern"]))
    positions = [[p for _, p, _ in evs] for evs in by_actor.values()]
    assert all(p == list(range(len(p))) for p in positions)
    assert all(len({pat for _, _, pat in evs}) == 1 for evs in by_actor.values())
    # Actors overlap in time: some sequence has another actor's event between two of its own.
    assert any(evs[-1][0] - evs[0][0] >= len(evs) for evs in by_actor.values())


def test_contract_violations_catch_bad_events():
    good = {"domain": "fintech", "transaction_id": "t", "test_id": "r", "timestamp": "2026-01-01T00:00:00+00:00",
            "actor_id": "a", "sequence_position": 0, "pattern": "regular_saver", "is_fraud": False,
            "account_from": "x", "account_to": "y", "amount": 10.0, "currency": "USD", "transfer_type": "ach",
            "country_from": "US", "country_to": "US", "purpose": "savings", "ip_address": "1.2.3.4"}
    assert contract_violations(good) == []
    assert contract_violations({**good, "extra_field": 1}) == []
    assert contract_violations({**good, "amount": "10"}) == ["amount: expected double, got str"]
    assert contract_violations({**good, "is_fraud": 1}) == ["is_fraud: expected boolean, got int"]
    assert contract_violations({**good, "sequence_position": True}) == ["sequence_position: expected int, got bool"]
    assert contract_violations({**good, "purpose": None}) == ["purpose: missing"]
    assert contract_violations({**good, "domain": "crypto"}) == ["unknown domain 'crypto'"]


# --- fraud shares and weights -----------------------------------------------------

def test_sequence_fraud_shares_match_config(history):
    actors = {}
    for event in history:
        actors[event["actor_id"]] = (event["domain"], event["is_fraud"])
    for domain, target in {"gaming": 0.10, "ecommerce": 0.08, "fintech": 0.07}.items():
        flags = [is_fraud for d, is_fraud in actors.values() if d == domain]
        assert abs(sum(flags) / len(flags) - target) <= 0.015, domain
    patterns = Counter(e["pattern"] for e in history)
    assert set(patterns) == set(PATTERNS), "all 16 patterns appear"


def test_fraud_rate_and_pattern_weights(tmp_path):
    path = tmp_path / "w.jsonl"
    simulate("--domain", "ecommerce", "--events", "20000", "--seed", "2", "--fraud-rate", "0.3",
             "--pattern-weights", "fraud_card_testing=3,fraud_friendly_fraud=1,fraud_promo_abuse=1",
             "--output", str(path))
    actors = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        assert event["domain"] == "ecommerce"
        actors[event["actor_id"]] = event["pattern"]
    fraud = [p for p in actors.values() if PATTERNS[p].is_fraud]
    assert abs(len(fraud) / len(actors) - 0.3) <= 0.01
    assert abs(Counter(fraud)["fraud_card_testing"] / len(fraud) - 0.6) <= 0.02


def test_same_seed_same_events_other_seed_other_events(tmp_path):
    paths = [tmp_path / f"{name}.jsonl" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("5", "5", "6")):
        simulate("--events", "3000", "--seed", seed, "--test-id", "det", "--output", str(path))
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


# --- pattern signatures --------------------------------------------------------------

def check_lengths(pattern, low, high):
    lengths = {len(s) for s in sequences(pattern)}
    assert min(lengths) == low and max(lengths) == high, (pattern, lengths)


def test_gaming_fraud_signatures():
    check_lengths("fraud_account_takeover", 3, 5)
    for seq in sequences("fraud_account_takeover"):
        for e in seq:
            assert 50 <= e["amount"] <= 200 and e["item_type"] in {"skin", "weapon", "battle_pass"}
            assert e["ip_address"].startswith(VPN_PREFIXES) and e["session_length_sec"] <= 240
            assert e["device_id"].startswith("dev-new")
    check_lengths("fraud_gold_farming", 5, 10)
    for seq in sequences("fraud_gold_farming"):
        for e in seq:
            assert e["item_type"] == "currency" and 0.99 <= e["amount"] <= 4.99
            assert e["payment_method"] == "credit_card" and e["session_length_sec"] <= 60
    check_lengths("fraud_chargeback_fraud", 2, 4)
    for seq in sequences("fraud_chargeback_fraud"):
        for e in seq:
            assert 100 <= e["amount"] <= 500 and e["item_type"] in {"lootbox", "battle_pass", "currency"}
            assert e["payment_method"] == "credit_card"


def test_ecommerce_fraud_signatures():
    check_lengths("fraud_card_testing", 5, 10)
    for seq in sequences("fraud_card_testing"):
        for e in seq:
            (item,) = e["cart_items"]
            assert item["category"] == "books" and item["quantity"] == 1 and item["price"] <= 15
            assert e["payment_method"] == "credit_card" and e["shipping_address"] != e["billing_address"]
            assert e["session_duration_sec"] <= 90
    check_lengths("fraud_friendly_fraud", 2, 3)
    for seq in sequences("fraud_friendly_fraud"):
        for e in seq:
            (item,) = e["cart_items"]
            assert item["category"] == "electronics" and 50 <= item["price"] <= 1000
            assert e["billing_address"] == e["shipping_address"] and e["session_duration_sec"] >= 1800
    check_lengths("fraud_promo_abuse", 4, 8)
    for seq in sequences("fraud_promo_abuse"):
        assert len({e["user_id"] for e in seq}) == len(seq)
        assert len({e["device_fingerprint"] for e in seq}) == len(seq)
        assert len({json.dumps(e["shipping_address"]) for e in seq}) == 1
        assert len({e["ip_address"] for e in seq}) == 1


def test_fintech_fraud_signatures():
    check_lengths("fraud_structuring", 5, 10)
    for seq in sequences("fraud_structuring"):
        assert len({e["account_to"] for e in seq}) == len(seq)
        for e in seq:
            assert e["transfer_type"] == "wire" and e["currency"] == "USD" and 9500 <= e["amount"] <= 9999
    check_lengths("fraud_money_laundering", 4, 8)
    for seq in sequences("fraud_money_laundering"):
        assert all(seq[i + 1]["account_from"] == seq[i]["account_to"] for i in range(len(seq) - 1))
        for e in seq:
            assert e["transfer_type"] == "swift" and 50_000 <= e["amount"] <= 500_000
            assert e["country_to"] in {"KY", "PA", "BZ", "VG"}
    check_lengths("fraud_synthetic_identity", 3, 5)
    for seq in sequences("fraud_synthetic_identity"):
        assert len({e["account_to"] for e in seq}) == len(seq)
        for e in seq:
            assert e["transfer_type"] in {"wire", "ach"} and e["currency"] == "USD"
            assert 5_000 <= e["amount"] <= 50_000 and (e["country_from"], e["country_to"]) == ("US", "US")


def test_regular_traffic_has_hard_negatives():
    whales = [e for s in sequences("regular_whale_spender") for e in s]
    assert all(20 <= e["amount"] <= 100 for e in whales)
    assert any(e["ip_address"].startswith(VPN_PREFIXES) for e in whales), "legitimate VPN users"
    savers = [e for s in sequences("regular_saver") for e in s]
    assert any(e["transfer_type"] == "wire" and e["amount"] >= 10_000 for e in savers), "legitimate large wires"
    assert all(len({e["account_to"] for e in s}) == 1 for s in sequences("regular_saver")), "same payee"
    payers = [e for s in sequences("regular_bill_payer") for e in s]
    assert any(e["transfer_type"] == "swift" and e["country_to"] not in {"KY", "PA", "BZ", "VG"} for e in payers)
    shoppers = [e for s in sequences("regular_shopper") for e in s]
    assert any(len(e["cart_items"]) == 1 and e["cart_items"][0]["category"] == "electronics"
               and e["cart_items"][0]["price"] >= 500 for e in shoppers), "single expensive electronics orders"
    assert any(e["shipping_address"] != e["billing_address"] for e in shoppers), "gifts shipped elsewhere"
    for name in ("regular_casual_player", "regular_grinder", "regular_shopper", "regular_window_shopper",
                 "regular_bill_payer"):
        assert all(2 <= len(s) <= 10 for s in sequences(name)), name
    grinders = [e for s in sequences("regular_grinder") for e in s]
    assert all(e["session_length_sec"] >= 1800 for e in grinders)


# --- command line -------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--domain", "crypto"], "error: --domain must be one of gaming, fintech, ecommerce or all, got 'crypto'"),
    (["--load-level", "turbo"], "error: unknown load level 'turbo': choose one of mini, normal, peak, crisis"),
    (["--rate", "-5"], "error: rate must be positive, got -5.0"),
    (["--fraud-rate", "1.5"], "error: --fraud-rate must be between 0 and 1, got 1.5"),
    (["--pattern-weights", "fraud_bogus=1"], "error: unknown pattern 'fraud_bogus' in pattern weights"),
    (["--pattern-weights", "fraud_card_testing"], "error: --pattern-weights: expected name=number, got 'fraud_card_testing'"),
    (["--events", "0"], "error: --events must be positive, got 0"),
    (["--events", "ten"], "error: argument --events: invalid int value: 'ten' (see --help)"),
    (["--profile", "absent"], "error: no profile 'absent': neither a file nor one of apac_super_app, default, "
                              "eu_marketplace, latam_wallets"),
])
def test_bad_arguments_give_one_line(tmp_path, args, message):
    base = ["--output", str(tmp_path / "o.jsonl")]
    if "--events" not in args:
        base += ["--events", "10"]
    result = simulate(*base, *args, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]


def test_help_lists_the_options():
    out = simulate("--help").stdout
    for option in ("--domain", "--load-level", "--rate", "--events", "--duration", "--fraud-rate", "--seed",
                   "--test-id", "--output", "--pattern-weights", "--profile"):
        assert option in out


# --- distribution profiles ----------------------------------------------------------

def test_the_default_profile_file_is_the_simulator_itself(tmp_path):
    plain, profiled = tmp_path / "plain.jsonl", tmp_path / "profiled.jsonl"
    simulate("--events", "2000", "--seed", "5", "--output", str(plain))
    simulate("--events", "2000", "--seed", "5", "--profile", "default", "--output", str(profiled))
    assert plain.read_bytes() == profiled.read_bytes()


def test_a_profile_shifts_the_surface_and_keeps_the_patterns(tmp_path):
    from fraud.reference import currencies
    from fraud_simulator.profile import load_profile

    profile = load_profile("eu_marketplace")
    path = tmp_path / "eu.jsonl"
    simulate("--events", "6000", "--seed", "8", "--fraud-rate", "0.5", "--profile", "eu_marketplace",
             "--output", str(path))
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(contract_violations(e) == [] for e in events), "still the contract"
    assert {e["pattern"] for e in events} == set(PATTERNS), "every pattern still drawn"
    table = currencies(None)
    for domain, mix in profile.currencies.items():
        seen = {e["currency"] for e in events if e["domain"] == domain}
        assert seen == set(mix), (domain, seen)
    for e in events:
        digits = table[e["currency"]].minor_units
        assert round(e["amount"], digits) == e["amount"], e
    by_actor = defaultdict(set)
    for e in events:
        by_actor[e["actor_id"]].add(e["currency"])
    assert all(len(c) == 1 for c in by_actor.values()), "an actor keeps its currency"
    methods = {e["payment_method"] for e in events if "payment_method" in e}
    assert methods <= set(profile.rename["payment_method"].values()) and "klarna" in methods
    categories = {i["category"] for e in events for i in e.get("cart_items", [])}
    assert categories <= set(profile.rename["category"].values())
    chf = [e["amount"] for e in events if e["currency"] == "CHF" and e["pattern"] == "fraud_structuring"]
    assert chf and all(6_800 < a < 8_800 for a in chf), "USD 9,500-9,999 at 0.8 CHF per USD, +-10 %"


@pytest.mark.parametrize("old, new, message", [
    ("  fintech: {EUR: 0.5, CHF: 0.3, GBP: 0.2}\n", "  fintech: {EUR: 0.5, XYZ: 0.5}\n",
     "currencies.fintech: needs ISO 4217 codes with non-negative weights (XYZ is not one)"),
    ("noise: 0.1\n", "noise: 1.5\n", "noise: must be in [0, 1), got 1.5"),
    ("rename:\n", "rename:\n  game_id: {g-starfall: g-other}\n", "rename.game_id: only payment_method, item_type"),
    ("gap_scale: 1.3\n", "", "gap_scale: missing"),
])
def test_a_bad_profile_gives_one_line(tmp_path, old, new, message):
    text = (ROOT / "dev" / "fraud_simulator" / "profiles" / "eu_marketplace.yaml").read_text()
    assert old in text
    path = tmp_path / "p.yaml"
    path.write_text(text.replace(old, new))
    result = simulate("--events", "10", "--profile", str(path), "--output", str(tmp_path / "o.jsonl"), check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[0].startswith(f"error: {path}: {message}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_finished_sequences_run_to_their_end_and_no_new_one_starts(tmp_path):
    cut, whole = tmp_path / "cut.jsonl", tmp_path / "whole.jsonl"
    simulate("--events", "3000", "--seed", "9", "--output", str(cut))
    simulate("--events", "3000", "--seed", "9", "--finish-sequences", "--output", str(whole))
    cut_events = [json.loads(line) for line in cut.read_text().splitlines()]
    whole_events = [json.loads(line) for line in whole.read_text().splitlines()]
    assert whole_events[:3000] == cut_events, "the same run, then the started sequences' remaining events"
    started = {e["actor_id"] for e in cut_events}
    assert {e["actor_id"] for e in whole_events} == started, "no sequence starts after the run's events"
    lengths = Counter(e["actor_id"] for e in whole_events)
    last = {e["actor_id"]: e["sequence_position"] for e in whole_events}
    assert all(last[a] == lengths[a] - 1 for a in lengths)
    # Every sequence is whole: every pattern draws at least 2 events.
    assert min(lengths.values()) >= 2 and len(whole_events) > 3000
