"""The model's input stages as data: what the pipeline (``fraud.model.forest.build_pipeline``) fits
and ``fraud.driver_scorer`` mirrors, kept apart from ``pyspark.ml`` so the stream can check a saved
model against them without importing it."""

from fraud.schemas import CATEGORICAL_FEATURES, NUMERIC_FEATURES

# Absent inputs (a fintech event has no payment method) become explicit values, in the pipeline,
# so serving fills them exactly as training did.
FILL_SQL = "SELECT *, " + ", ".join(
    [f"coalesce(CAST({c} AS DOUBLE), -1.0) AS m_{c}" for c in NUMERIC_FEATURES]
    + [f"coalesce({c}, 'none') AS m_{c}" for c in CATEGORICAL_FEATURES]) + " FROM __THIS__"
# Category indices used as plain numbers, not as Spark "nominal" features and not one-hot.
# Measured on held-out data: Spark orders a many-valued nominal feature of a multiclass label
# by node impurity, which cannot separate pure categories (savings vs synthetic-identity wires,
# F1 0.87 on one seed); one-hot slots diluted feature sampling (friendly fraud F1 0.79).
AS_NUMBERS_SQL = "SELECT *, " + ", ".join(f"i_{c} + 0.0 AS n_{c}" for c in CATEGORICAL_FEATURES) + " FROM __THIS__"
# The forest's input vector, in order (``fraud.driver_scorer`` mirrors these stages on the driver).
ASSEMBLED_COLUMNS = [f"m_{c}" for c in NUMERIC_FEATURES] + [f"n_{c}" for c in CATEGORICAL_FEATURES]
