# Two commands matter: `make demo` (set up, start the stack, run the pipeline) and
# `make test` (set up if needed, run the whole suite). Everything else is a step of those.
PY := .venv/bin/python

.PHONY: setup up down status demo test test-fast chaos hostile aws-sim clean-state bench bench-quick benchmarks-page soak drift retrain notebooks notebooks-strip

setup:
	@scripts/setup.sh

up: setup
	@$(PY) -m fraud_devstack up

down:
	@if [ -f var/demo/job.pid ]; then kill -- -$$(cat var/demo/job.pid) 2>/dev/null || true; rm -f var/demo/job.pid; fi
	@if [ -f var/demo/dash.pid ]; then kill -- -$$(cat var/demo/dash.pid) 2>/dev/null || true; rm -f var/demo/dash.pid; fi
	@if [ -x $(PY) ]; then $(PY) -m fraud_devstack down; fi

status:
	@$(PY) -m fraud_devstack status

demo: up
	@scripts/demo.sh

test: setup
	@$(PY) -m pytest

# The inner loop: every test that needs neither the local stack (Kafka, PostgreSQL) nor a job or
# kernel in a JVM of its own (marker `integration`); one in-process Spark session.
test-fast: setup
	@$(PY) -m pytest -m "not integration"

# The fault-injection suite's long version (tests/test_chaos.py): 50 random SIGKILLs instead of
# the 4 of `make test`; figures appended to var/chaos/results.jsonl.
chaos: setup
	@FRAUD_CHAOS_KILLS=50 $(PY) -m pytest tests/test_chaos.py -s

# The hostile-input campaign's long version (tests/test_hostile.py): 5,000 hostile records through real
# Kafka and the job instead of the 200 of `make test` (FRAUD_HOSTILE_SEED=N for another draw); figures
# appended to var/hostile/results.jsonl.
hostile: setup
	@FRAUD_HOSTILE_RECORDS=5000 $(PY) -m pytest tests/test_hostile.py -k never_stop -s

# The dev environment applied to an emulated AWS (moto over TLS on loopback, the real provider from
# the machine's mirror), then a release uploaded and a stream run submitted and cancelled through
# python -m emr (scripts/aws_sim; what is not emulated is printed). A few minutes; leaves var/aws-sim.
aws-sim: setup
	@$(PY) scripts/aws_sim/run.py

# Benchmarks (B1 scoring modes, B2 drain throughput, B3 detection latency, cost) on the local stack,
# with the model `make demo` registers; results in benchmarks/results/latest.json.
bench: up
	@$(PY) -m benchmarks.run && $(PY) -m benchmarks.page

bench-quick: up
	@$(PY) -m benchmarks.run --quick && $(PY) -m benchmarks.page

# docs/benchmarks.md from benchmarks/results/*.json (tests/test_docs.py checks it is current).
benchmarks-page: setup
	@$(PY) -m benchmarks.page

# Execute the notebooks against the local lake (var/lake, conf/local.yaml) with papermill; executed copies
# go to var/notebooks/. NOTEBOOK_PARAMS passes papermill parameters, e.g. NOTEBOOK_PARAMS="-p postgres_dsn local-stack".
notebooks: setup
	@$(PY) -m ipykernel install --prefix .venv --name fraud-venv --display-name "Python (fraud .venv)" >/dev/null
	@mkdir -p var/notebooks
	@for nb in notebooks/*.ipynb; do \
	  $(PY) -m papermill --kernel fraud-venv --cwd notebooks $(NOTEBOOK_PARAMS) "$$nb" "var/notebooks/$$(basename $$nb)" || exit 1; \
	done
	@echo "executed notebooks in var/notebooks/"

# Strip outputs and execution counts before committing a notebook (tests/test_notebooks.py checks it).
notebooks-strip:
	@$(PY) -m nbstripout notebooks/*.ipynb

# Forget the local stack's data, the lake and checkpoints (keeps .venv and the jar cache).
clean-state: down
	rm -rf var

# Drift of the last hour of the local lake against the current model (fraud.drift), into PostgreSQL.
drift: up
	@.venv/bin/spark-submit jobs/drift.py --config conf/local.yaml

# Retrain on the last 30 days of the local silver with the analysts' verdicts; registered as the
# challenger if it passes the gate (RETRAIN_ARGS="--days 7" to change), never promoted.
retrain: up
	@.venv/bin/spark-submit jobs/retrain.py --config conf/local.yaml $(RETRAIN_ARGS)

# The soak test (benchmarks/soak.py): the job at normal load for 60 minutes (SOAK_ARGS="--minutes 30"
# to change), maintenance every 15, first 10 minutes against the last; benchmarks/results/soak.*.
soak: up
	@$(PY) -m benchmarks.soak $(SOAK_ARGS) && $(PY) -m benchmarks.page
