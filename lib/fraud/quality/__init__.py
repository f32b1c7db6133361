"""Data quality with Great Expectations 1.x: the event suite on the stream, the training gate.

Two tiers on the stream. The *contract* (``fraud.parse``) quarantines what cannot be scored:
unparseable, missing or mistyped fields, impossible values, unknown domain, oversize, duplicates.
The *expectations* here describe what traffic is expected to look like; a row failing one is
unusual, not unscorable: it is scored and carries the expectation's name in ``quality_flags``
(silver, gold, alert transactions), unless ``quality.actions`` makes that expectation quarantine.

Two suites built in code (``fraud.quality.suites``):

- ``event_expectations`` on contract-valid, silver-shaped rows (typed, flattened events plus a
  few derived check columns, ``with_quality_columns``): currencies in the currency table
  (``fraud.reference``), amounts within their currency's minor units and a per-domain bound in
  US dollars, clock skew, expected enumerations (``quality.expected_values``), address and cart
  structure for e-commerce.
- ``training_set`` on labelled silver (plus ``training_classes`` on its class counts):
  every class present with enough rows, regular share within bounds, model inputs
  non-null and within their ranges.

In the stream, validation has two speeds, because a GX checkpoint on the Spark engine
runs a Spark job or more per expectation (measured 10-15 s for this suite on a
2,000-row batch on 2 cores, see ``benchmarks/quality_overhead.py``):

- every batch: each expectation of the suite (``RowExpectation``: GX's ``column_values`` kinds
  as plain data, so the job never waits for GX's ~11 s import) is turned into the Spark ``Column``
  of its failing rows
  (``fraud.quality.checks.failing_rows``; a test checks it counts exactly what GX counts),
  which sets the row's flags (or reasons); per expectation counts, actions and a few examples
  go to PostgreSQL ``quality_results`` (engine ``spark``). All of it is JVM work: no per-row
  Python.
- every ``quality.gx_every_n_batches``-th batch (optionally on a sample): the GX
  checkpoint itself on the Spark data source, the batch passed at run time, in a
  background thread so the stream does not wait for it; its result is stored too
  (engine ``great_expectations``) and rendered as data docs.

A failing suite only reports unless ``quality.fail_stream_on_failure``.

Modules, in the order the data meets them:

- ``suites``: the expectation suites (event expectations, feature ranges, training set).
- ``checks``: row-level expectations as Spark columns of failing rows, and the
  ``quality_flags`` / ``expectation:<name>`` reasons built from them.
- ``validator``: the ephemeral GX context that runs a suite; plain summaries of its results.
- ``routing``: ``ExpectationRouting``, the record path's step (flags, or reasons).
- ``results``: ``QualityResults``, what each micro-batch stores (results to PostgreSQL, the
  background GX checkpoint).
- ``gate``: the training-set gate and ``QualityGateFailed``.
- ``__main__``: the CLI: ``python -m fraud.quality expectations`` lists the suite with each
  expectation's action; ``python -m fraud.quality docs --input events.jsonl`` validates a
  simulator file against the event suite and builds the data docs.
"""

import os

# Set here, before any submodule imports great_expectations: no usage statistics leave the machine.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
