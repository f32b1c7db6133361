"""CLI output for people: readable text by default, JSON with --json (fraud.cli.report)."""

import json

from fraud.cli import readable, report


def test_a_mapping_reads_as_aligned_lines_and_a_list_of_records_as_a_table():
    text = readable({"version": "v0002", "alert_threshold": 0.9, "current": True, "note": None,
                     "metrics": {"macro_f1": 0.94512}})
    assert text.splitlines() == ["version:         v0002", "alert_threshold: 0.9", "current:         yes",
                                 "note:            -", "metrics:", "  macro_f1: 0.9451"]
    table = readable([{"version": "v0001", "current": False}, {"version": "v0002", "current": True}])
    assert table.splitlines() == ["version  current", "v0001    no", "v0002    yes"]
    assert "{" not in text + table, "no Python reprs"


def test_json_on_request(capsys):
    report({"version": "v0002", "features": ["a"]}, as_json=True)
    assert json.loads(capsys.readouterr().out) == {"version": "v0002", "features": ["a"]}
