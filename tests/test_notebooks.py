"""The notebooks run, end to end, against a small lake built here with the library's own code.

The lake: two simulated runs (file mode, two seeds) turned into Kafka-shaped records, a few
malformed records, and bronze / silver / quarantine / gold written as the stream writes them
(one Delta commit per "batch", so history and time travel have something to show). A tiny
forest trained on the first run and evaluated on the second is registered and promoted, so
the model notebook has a registered model to compare with. No Kafka or PostgreSQL is started.

Each notebook runs in its own kernel (this venv's Python, registered in a temporary Jupyter
path) through papermill, which fails the test on any cell error. Each notebook ends with a
cell tagged ``summary`` printing one JSON line; the tests check it against the lake they built.
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from pyspark.sql import functions as F

from fraud.model.evaluation import evaluate
from fraud.model.forest import FEATURE_COLUMNS, fit_model, with_label
from fraud.parse import kafka_records
from fraud.pipeline import batch_records, to_bronze, to_quarantine, to_silver, with_batch_id
from fraud.registry import Registry
from fraud.score import LoadedModel, score_silver, with_scored_at
from fraud_simulator.__main__ import build_options
from fraud_simulator.run import run_simulation

from pipeline_support import job_env

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "fraud-venv"
# Two runs (train on the first, evaluate on the second); a high fraud share so all 10 classes appear.
RUNS = {"history-seed11": (11, 5000), "history-seed12": (12, 2500)}


def rejected_records(event: dict) -> dict[str, bytes]:
    """One record per quarantine reason the lake should show, keyed by that reason."""
    return {
        "malformed_json": b'{"transaction_id": "broken", "amount": ',
        "missing_field:transaction_id": json.dumps({k: v for k, v in event.items() if k != "transaction_id"}).encode(),
        "bad_type:amount": json.dumps({**event, "transaction_id": "bad-amount", "amount": "lots"}).encode(),
        "unknown_domain": json.dumps({**event, "transaction_id": "bad-domain", "domain": "casino"}).encode(),
    }


def append(df, config, table: str, partition_by: list[str]) -> None:
    df.write.format("delta").mode("append").partitionBy(*partition_by).save(config.table_path(table))


@pytest.fixture(scope="module")
def small_lake(spark, config, tmp_path_factory):
    """Bronze, silver, quarantine and gold of two runs (two Delta versions each) and a registered v0001."""
    root = tmp_path_factory.mktemp("notebook-lake")
    lake_config = dataclasses.replace(config, lake_root=str(root / "lake"), models_root=None)
    silver_by_run, batches, offset, rejected = {}, [], 0, {}
    for batch_id, (test_id, (seed, events)) in enumerate(RUNS.items()):
        path = root / f"{test_id}.jsonl"
        options = build_options(lake_config, domain="all", load_level=None, rate=None, events=events, duration=None,
                                fraud_rate=0.25, seed=seed, test_id=test_id, pattern_weights=None, output=str(path))
        run_simulation(lake_config, options)
        lines = path.read_text().splitlines()
        raw_df = kafka_records(spark, lake_config, lines, first_offset=offset)
        offset += len(lines)
        if batch_id == 1:  # the second batch also carries rejects, so quarantine has one commit
            gaming = next(e for e in map(json.loads, lines) if e["domain"] == "gaming")
            rejected = rejected_records(gaming)
            raw_df = raw_df.union(kafka_records(spark, lake_config, [gaming] * len(rejected),
                                                values=list(rejected.values()), partition=1))
        velocity_df = batch_records(raw_df, lake_config).cache()
        silver_df = velocity_df.transform(to_silver).transform(with_batch_id, batch_id)
        append(to_bronze(velocity_df, lake_config, batch_id), lake_config, "bronze", ["domain", "ingest_date"])
        append(silver_df, lake_config, "silver", ["domain", "event_date"])
        if batch_id == 1:
            append(to_quarantine(velocity_df, batch_id), lake_config, "quarantine", ["ingest_date"])
        batches.append(batch_id)
        silver_by_run[test_id] = (spark.read.format("delta").load(lake_config.table_path("silver"))
                                  .filter(F.col("test_id") == test_id).cache())
        velocity_df.unpersist()

    train_id, eval_id = RUNS
    tiny = dataclasses.replace(lake_config, model=dataclasses.replace(lake_config.model, num_trees=6, max_depth=8))
    model, _, _ = fit_model(tiny, silver_by_run[train_id], progress=lambda message: None)
    metrics = evaluate(model, with_label(silver_by_run[eval_id]), tiny, "v0001")
    registry = Registry.for_config(lake_config)
    model.write().overwrite().save(registry.model_path("v0001"))
    registry.write_metadata("v0001", {
        "version": "v0001", "created_at": "2026-01-03T00:00:00Z", "metrics": metrics, "features": FEATURE_COLUMNS,
        "training_data": {"train": {"test_ids": [train_id]}, "evaluation": {"test_ids": [eval_id]}},
        "params": {"num_trees": 6, "max_depth": 8},
    })
    registry.promote("v0001")
    for test_id, silver_df in silver_by_run.items():  # gold: one commit per run, like one per batch
        gold_df = with_scored_at(score_silver(silver_df, LoadedModel("v0001", model), lake_config))
        append(gold_df, lake_config, "gold", ["domain", "event_date"])
        silver_df.unpersist()
    return {"lake_root": lake_config.lake_root, "events": {t: n for t, (_, n) in RUNS.items()},
            "rejected": rejected, "registered_metrics": metrics}


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernel spec named KERNEL running this interpreter, visible through JUPYTER_PATH only; its
    Spark JVM with the JIT's first tier only, like the tests' jobs (``pipeline_support.job_env``)."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec = jupyter / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (fraud .venv)", "language": "python"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter))
        patch.setenv("SPARK_SUBMIT_OPTS", job_env()["SPARK_SUBMIT_OPTS"])
        yield


def run_notebook(name: str, out_dir: Path, parameters: dict) -> tuple[dict, nbformat.NotebookNode]:
    import papermill

    output = out_dir / name
    # The kernel starts in notebooks/ (nbclient's ``resources`` path), not through papermill's ``cwd``:
    # that one is an os.chdir of this whole process for the run, which the two notebooks run at once
    # raced on (a kernel started in the repository root, where ../conf/local.yaml does not exist).
    papermill.execute_notebook(str(ROOT / "notebooks" / name), str(output), parameters=parameters,
                               kernel_name=KERNEL, progress_bar=False,
                               resources={"metadata": {"path": str(ROOT / "notebooks")}})
    executed = nbformat.read(output, as_version=4)
    (cell,) = [c for c in executed.cells if "summary" in c.metadata.get("tags", [])]
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    return json.loads(text.strip().splitlines()[-1]), executed


def images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


def test_committed_notebooks_are_stripped_and_parameterised():
    assert [p.name for p in NOTEBOOKS] == ["01_explore_lake.ipynb", "02_model_development.ipynb"]
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code), f"{path.name} has outputs"
        assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1, path.name
        assert sum("summary" in c.metadata.get("tags", []) for c in code) == 1, path.name
    verify = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", *map(str, NOTEBOOKS)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, f"run `make notebooks-strip`: {verify.stdout}{verify.stderr}"


def test_model_notebook_uses_the_library_not_copies():
    notebook = nbformat.read(ROOT / "notebooks" / "02_model_development.ipynb", as_version=4)
    source = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    for name in ("fit_model", "evaluate", "silver_snapshot", "gate_failures", "Registry.for_config"):
        assert name in source, name
    for copied in ("RandomForestClassifier(", "StringIndexer(", "VectorAssembler(", "def evaluate"):
        assert copied not in source, f"the notebook re-implements library code: {copied}"


@pytest.fixture(scope="module")
def executed_notebooks(small_lake, kernel_env, tmp_path_factory):
    """Both notebooks run at once, each in its kernel (a Spark JVM each, which starts and waits on I/O
    part of the time: ~134 s one after the other); notebook name -> future of ``run_notebook``."""
    from concurrent.futures import ThreadPoolExecutor

    out = tmp_path_factory.mktemp("executed")
    parameters = {"01_explore_lake.ipynb": {"lake_root": small_lake["lake_root"]},
                  "02_model_development.ipynb": {"lake_root": small_lake["lake_root"], "num_trees": 4, "max_depth": 6}}
    with ThreadPoolExecutor(len(parameters), thread_name_prefix="notebook") as pool:
        yield {name: pool.submit(run_notebook, name, out, p) for name, p in parameters.items()}


@pytest.mark.integration  # a kernel with a Spark JVM of its own
def test_explore_notebook_against_the_small_lake(small_lake, executed_notebooks):
    summary, executed = executed_notebooks["01_explore_lake.ipynb"].result(timeout=900)
    events, rejected = sum(small_lake["events"].values()), len(small_lake["rejected"])
    assert summary["spark_rows"] == {"bronze": events + rejected, "silver": events, "quarantine": rejected,
                                     "gold": events}
    assert summary["deltalake_rows"] == summary["spark_rows"], "delta-rs reads what Spark wrote"
    assert summary["quarantine_reasons"] == {reason: 1 for reason in small_lake["rejected"]}
    assert summary["silver_versions"] == 2
    assert summary["silver_rows_at_version_0"] == small_lake["events"]["history-seed11"]
    assert summary["deltalake_silver_rows_at_version_0"] == small_lake["events"]["history-seed11"]
    assert set(summary["fraud_share_by_domain"]) == {"gaming", "fintech", "ecommerce"}
    assert all(0 < share < 1 for share in summary["fraud_share_by_domain"].values())
    assert summary["velocity_patterns"] == 16
    assert 0 < summary["alerts"]["precision"] <= 1 and 0 < summary["alerts"]["sequence_recall"] <= 1
    assert summary["postgres"] is None
    assert images(executed) >= 4, "the plots rendered"


@pytest.mark.integration  # a kernel with a Spark JVM of its own
def test_model_notebook_against_the_small_lake(small_lake, executed_notebooks):
    summary, executed = executed_notebooks["02_model_development.ipynb"].result(timeout=900)
    assert summary["train_test_ids"] == ["history-seed11"] and summary["eval_test_ids"] == ["history-seed12"]
    assert summary["train_rows"] == small_lake["events"]["history-seed11"]
    candidate = summary["candidate"]
    assert candidate["events"] == small_lake["events"]["history-seed12"]
    assert sum(map(sum, candidate["confusion_matrix"])) == candidate["events"]
    assert len(candidate["per_class_f1"]) == 10 and candidate["accuracy"] > 0.5
    assert sorted(candidate["feature_importances"]) == sorted(FEATURE_COLUMNS)
    registered = summary["registered"]
    expected = small_lake["registered_metrics"]
    assert registered["version"] == "v0001"
    assert (registered["accuracy"], registered["macro_f1"]) == (expected["accuracy"], expected["macro_f1"]), \
        "the notebook re-scores the registered model on the same held-out rows"
    assert images(executed) >= 3, "the plots rendered"
