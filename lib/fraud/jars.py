"""Jars from Maven Central, resolved once with Maven into the project cache, and the project's own.

Three sets from Maven Central, each described by a pom under ``scripts/jars``:

- ``spark``: Delta Lake and the Kafka source for the Spark job. Jars that pyspark
  already ships (Scala, Hadoop client, slf4j, ...) are dropped so the classpath
  holds one version of each.
- ``kafka``: the Apache Kafka broker run by the local stack.
- ``msk-iam``: the MSK IAM auth jar, shipped with the job to EMR Serverless (``emr/``).

After the first resolution everything is read from ``.cache/jars`` offline, until a set's pom changes
(a version move): that set is resolved again.

One set is built here: ``fraud``, the project's JVM code (``jvm/src/main/java``: the velocity
state operator), compiled with ``javac`` against the very Spark jars PySpark ships (Spark 4.1.1,
what EMR runs) and rebuilt whenever a source file or the installed pyspark version changes.
"""

import hashlib
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
JVM_SOURCES = ROOT / "jvm" / "src" / "main" / "java"
FRAUD_JAR = "fraud-jvm.jar"
_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*\.jar$")


def jar_dir(name: str) -> Path:
    return CACHE_DIR / "jars" / name


def ensure_jars(name: str) -> list[Path]:
    """Return the jar paths of set ``name``, resolving them with Maven the first time."""
    if name == "fraud":
        return [ensure_fraud_jar()]
    if name not in JAR_SETS:
        raise ValueError(f"unknown jar set {name!r}")
    target = jar_dir(name)
    # Keyed on the pom: a checkout that moves a version resolves the set again instead of keeping
    # the jars of the old one.
    pom = (POM_DIR / f"{name}.pom.xml").read_bytes()
    done = target / f".complete-{hashlib.sha256(pom).hexdigest()[:16]}"
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


def spark_jars() -> list[Path]:
    """Everything the Spark job needs on its classpath beyond PySpark: Delta, the Kafka source, ours."""
    return ensure_jars("spark") + [ensure_fraud_jar()]


def ensure_fraud_jar() -> Path:
    """The project's JVM code as a jar, compiled when its sources or the Spark it compiles against
    changed since the last build."""
    import pyspark

    sources = sorted(JVM_SOURCES.rglob("*.java"))
    digest = hashlib.sha256(pyspark.__version__.encode() + b"".join(
        p.relative_to(JVM_SOURCES).as_posix().encode() + p.read_bytes() for p in sources)).hexdigest()[:16]
    target = jar_dir("fraud")
    jar = target / FRAUD_JAR
    stamp = target / f".built-{digest}"
    if jar.exists() and stamp.exists():
        return jar
    if shutil.which("javac") is None or shutil.which("jar") is None:
        raise UserError("a JDK (javac, jar) is needed to build the project's JVM code; install openjdk-17-jdk-headless")
    log.info("building %s from %d sources", jar, len(sources))
    shutil.rmtree(target, ignore_errors=True)
    classes = target / "classes"
    classes.mkdir(parents=True)
    classpath = str(Path(pyspark.__file__).parent / "jars" / "*")
    compiled = subprocess.run(["javac", "--release", "17", "-Xlint:all,-path", "-Werror", "-cp", classpath,
                               "-d", str(classes), *map(str, sources)], capture_output=True, text=True)
    if compiled.returncode != 0:
        raise UserError(f"javac failed on jvm/: {(compiled.stderr or compiled.stdout).strip()[:2000]}")
    subprocess.run(["jar", "--create", "--file", str(jar), "-C", str(classes), "."], check=True)
    shutil.rmtree(classes)
    stamp.touch()
    return jar


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
        print(",".join(str(p) for p in spark_jars()))
        return
    for name in JAR_SETS:
        print(f"{name}: {len(ensure_jars(name))} jars in {jar_dir(name)}")
    print(f"fraud: {ensure_fraud_jar()}")


if __name__ == "__main__":
    from fraud.cli import run

    run(main)
