"""Jars from Maven Central, resolved once with Maven into the project cache.

Three sets, each described by a pom under ``scripts/jars``:

- ``spark``: Delta Lake and the Kafka source for the Spark job. Jars that pyspark
  already ships (Scala, Hadoop client, slf4j, ...) are dropped so the classpath
  holds one version of each.
- ``kafka``: the Apache Kafka broker run by the local stack.
- ``msk-iam``: the MSK IAM auth jar, shipped with the job to EMR Serverless (``emr/``).

After the first resolution everything is read from ``.cache/jars`` offline.
"""

import logging
import re
import shutil
import subprocess
from pathlib import Path

from fraud.cli import UserError
from fraud.project import CACHE_DIR, ROOT

log = logging.getLogger(__name__)

POM_DIR = ROOT / "scripts" / "jars"
JAR_SETS = ("spark", "kafka", "msk-iam")
_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*\.jar$")


def jar_dir(name: str) -> Path:
    return CACHE_DIR / "jars" / name


def ensure_jars(name: str) -> list[Path]:
    """Return the jar paths of set ``name``, resolving them with Maven the first time."""
    if name not in JAR_SETS:
        raise ValueError(f"unknown jar set {name!r}")
    target = jar_dir(name)
    done = target / ".complete"
    if not done.exists():
        _resolve(name, target)
        done.touch()
    return sorted(target.glob("*.jar"))


def _resolve(name: str, target: Path) -> None:
    if shutil.which("mvn") is None:
        raise UserError("Maven (mvn) is needed once to fetch jars from Maven Central; install it")
    log.info("resolving %s jars from Maven Central into %s", name, target)
    shutil.rmtree(target, ignore_errors=True)
    cmd = [
        "mvn", "-q", "-B",
        "-s", str(POM_DIR / "settings.xml"),
        "-f", str(POM_DIR / f"{name}.pom.xml"),
        f"-Dmaven.repo.local={CACHE_DIR / 'm2'}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={target}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        errors = [line for line in result.stdout.splitlines() if "[ERROR]" in line]
        raise UserError(f"Maven could not resolve the {name} jars: {errors[0] if errors else result.stderr[-300:]}")
    if name == "spark":
        _drop_jars_pyspark_ships(target)


def _drop_jars_pyspark_ships(target: Path) -> None:
    import pyspark

    shipped = {_artifact(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    for jar in target.glob("*.jar"):
        if _artifact(jar.name) in shipped:
            jar.unlink()


def _artifact(filename: str) -> str:
    """``scala-library-2.13.16.jar`` -> ``scala-library``."""
    return _VERSION_SUFFIX.sub("", filename)


def main(argv: list[str] | None = None) -> None:
    """``python -m fraud.jars``: resolve every jar set (the setup script runs it).

    ``--spark-jars`` prints the comma-separated Spark jar list for ``spark-submit --jars``.
    """
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--spark-jars"]:
        print(",".join(str(p) for p in ensure_jars("spark")))
        return
    for name in JAR_SETS:
        print(f"{name}: {len(ensure_jars(name))} jars in {jar_dir(name)}")


if __name__ == "__main__":
    from fraud.cli import run

    run(main)
