"""Delta tables written by Spark are readable by Spark and by delta-rs (an independent reader)."""

import datetime as dt

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import types as T

pytestmark = pytest.mark.integration

SCHEMA = T.StructType([
    T.StructField("transaction_id", T.StringType(), False),
    T.StructField("domain", T.StringType(), True),
    T.StructField("amount", T.DoubleType(), True),
    T.StructField("event_date", T.DateType(), True),
])
ROWS = [
    ("t1", "gaming", 4.99, dt.date(2026, 11, 1)),
    ("t2", "fintech", 9800.0, dt.date(2026, 11, 2)),
    ("t3", None, None, None),
]


def test_write_then_read_with_spark_and_delta_rs(spark, tmp_path):
    path = str(tmp_path / "table")
    written_df = spark.createDataFrame(ROWS, SCHEMA)
    written_df.write.format("delta").partitionBy("domain").save(path)
    written_df.write.format("delta").mode("append").partitionBy("domain").save(path)

    read_df = spark.read.format("delta").load(path)
    expected_df = written_df.unionByName(written_df)
    assert_df_equality(read_df, expected_df, ignore_row_order=True, ignore_column_order=True, ignore_nullable=True)

    table = DeltaTable(path)
    assert table.version() == 1
    arrow = table.to_pyarrow_table().sort_by("transaction_id")
    assert arrow.column("transaction_id").to_pylist() == ["t1", "t1", "t2", "t2", "t3", "t3"]
    assert arrow.column("amount").to_pylist() == [4.99, 4.99, 9800.0, 9800.0, None, None]
    assert arrow.column("domain").to_pylist() == ["gaming", "gaming", "fintech", "fintech", None, None]
    # Time travel: version 0 holds the first write only.
    assert DeltaTable(path, version=0).to_pyarrow_table().num_rows == 3
