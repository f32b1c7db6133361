#!/usr/bin/env bash
# Idempotent setup: a virtualenv at .venv with the pinned packages, the jars from
# Maven Central in .cache/jars, and a spark-submit bound to both. Re-running is
# cheap: packages are reinstalled only when setup.cfg changes.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need java || ! need mvn; then
  if [ "$(id -u)" = 0 ] && need apt-get; then
    echo "setup: installing Java 17 and Maven from Debian packages"
    apt-get update -qq && apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null
  else
    echo "error: Java 17 and Maven are required (apt-get install openjdk-17-jdk-headless maven)" >&2
    exit 2
  fi
fi
# Headless Chromium and its driver for the Dash app's browser tests.
if ! need chromium || ! need chromedriver; then
  if [ "$(id -u)" = 0 ] && need apt-get; then
    echo "setup: installing chromium and chromium-driver from Debian packages"
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "warning: chromium and chromium-driver are missing; the browser tests will be skipped" >&2
  fi
fi
PYTHON=${PYTHON:-python3.11}
need "$PYTHON" || { echo "error: $PYTHON is required (set PYTHON=/path/to/python3.11)" >&2; exit 2; }

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=".venv/.installed-$(cat setup.cfg pyproject.toml dev/setup.cfg | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip
  # The job's package (lib/fraud) with the Dash app's and the tests' packages and, beside it, the
  # simulator and the local stack (dev/).
  .venv/bin/pip install -q -e '.[dash,dev]' -e './dev[stack]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# Test tools that pin dozens of packages clashing with the project's get a venv each, rebuilt
# only when their lock changes: checkov (Terraform static checks, tests/test_terraform.py),
# schemathesis (the Dash app's API against its OpenAPI document, tests/test_dash_api.py) and moto
# (the emulated AWS of make aws-sim).
tool_venv() {
  local name=$1 lock=scripts/$1-requirements.txt
  local stamp=".venv-$name/.installed-$(sha256sum "$lock" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "setup: installing $name into .venv-$name"
    rm -rf ".venv-$name"
    "$PYTHON" -m venv ".venv-$name"
    ".venv-$name/bin/pip" install -q --upgrade pip
    ".venv-$name/bin/pip" install -q -r "$lock"
    touch "$stamp"
  fi
}
tool_venv checkov
tool_venv schemathesis
tool_venv moto

.venv/bin/python -m fraud.jars
# A class-data archive for the local JVMs (fraud/jvm.py): ~20 % off every Spark start.
jvm_opts="$(.venv/bin/python -m fraud_devstack.jvm_archive)"

# pyspark's own spark-submit looks for `python3` on PATH; bind it to this venv and the
# cached Delta/Kafka jars so `.venv/bin/spark-submit jobs/...` needs no flags.
venv="$(cd .venv && pwd)"
spark_home="$(.venv/bin/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
cat > .venv/bin/spark-submit <<WRAPPER
#!/bin/sh
# Written by scripts/setup.sh.
export SPARK_HOME="$spark_home"
export PYSPARK_PYTHON="$venv/bin/python" PYSPARK_DRIVER_PYTHON="$venv/bin/python"
export SPARK_SUBMIT_OPTS="\${SPARK_SUBMIT_OPTS:-} $jvm_opts"
exec "\$SPARK_HOME/bin/spark-submit" \\
  --driver-memory "\${FRAUD_DRIVER_MEMORY:-4g}" \\
  --jars "\$("$venv/bin/python" -m fraud.jars --spark-jars)" "\$@"
WRAPPER
chmod +x .venv/bin/spark-submit
echo "setup: done (.venv, .cache/jars)"
