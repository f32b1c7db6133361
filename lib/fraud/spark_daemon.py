"""PySpark's Python worker daemon with a lean import path (local runs only).

Spark starts its Python workers with ``pyspark.zip``, the py4j zip and the spark-core jar
on ``PYTHONPATH``, and every task calls ``importlib.invalidate_caches()``, which re-reads
the directory of every zip on the path: ~0.4 s per task on 2 cores, measured, paid by every
task of every micro-batch (py-spy showed it as 30% of the state operator's Python time).
With PySpark installed in the venv those archives are duplicates, so this daemon drops
them before anything is imported from them, then runs the stock daemon. ``fraud.spark``
selects it with ``spark.python.daemon.module`` for local masters.
"""

import importlib.util
import os
import sys


def _drop_bundled_archives() -> None:
    bundled = [p for p in sys.path if p.endswith((".zip", ".jar"))
               and (os.sep.join(("pyspark", "python", "lib")) in p or os.sep.join(("pyspark", "jars")) in p)]
    kept = [p for p in sys.path if p not in bundled]
    saved, sys.path[:] = list(sys.path), kept
    if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("py4j") is None:
        sys.path[:] = saved  # no installed PySpark: the archives are the only copy
    for entry in bundled:
        sys.path_importer_cache.pop(entry, None)


if __name__ == "__main__":
    _drop_bundled_archives()
    from pyspark import daemon

    daemon.manager()
