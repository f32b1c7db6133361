"""The GX side: one ephemeral Great Expectations context that runs suites on Spark frames, and
plain summaries of its results (``summarize``, ``describe``) for storage and messages.

Great Expectations is imported when a ``Validator`` is made, not with this module: its import takes
~11 s on 2 cores, which the stream's start-up and the CLIs that never run a checkpoint do not pay.
"""

from __future__ import annotations

import warnings

from pyspark.sql import DataFrame

from fraud.quality.suites import BETWEEN, IN_SET, MATCH_REGEX, NOT_NULL, RowExpectation, Suite

# Examples kept per failed expectation, by GX (partial_unexpected_count) and by the stream's own checks.
EXAMPLES_PER_EXPECTATION = 3


class Validator:
    """One ephemeral GX context: a Spark data source with one dataframe asset per suite, a
    validation definition and a checkpoint each; the frame is passed at run time."""

    def __init__(self, suites: list[Suite], docs_dir: str | None = None):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        warnings.filterwarnings("ignore", module="great_expectations")
        self.context = gx.get_context(mode="ephemeral")
        # No "Calculating Metrics" bars on stderr: the CLIs print their own lines, the job logs.
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.docs_dir = docs_dir
        actions = []
        if docs_dir:
            self.context.add_data_docs_site(site_name="fraud", site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": docs_dir},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            })
            actions.append(gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["fraud"]))
        # We persist (and release) the frames ourselves, per batch.
        source = self.context.data_sources.add_spark("fraud", persist=False)
        self.checkpoints = {}
        for spec in suites:
            suite = self.context.suites.add(gx.ExpectationSuite(name=spec.name))
            for expectation in spec.expectations:
                suite.add_expectation(gx_expectation(expectation))
            batch = source.add_dataframe_asset(suite.name).add_batch_definition_whole_dataframe("batch")
            definition = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=suite.name, data=batch, suite=suite))
            self.checkpoints[suite.name] = self.context.checkpoints.add(gx.Checkpoint(
                name=suite.name, validation_definitions=[definition], actions=actions,
                result_format={"result_format": "BASIC", "partial_unexpected_count": EXAMPLES_PER_EXPECTATION}))

    def run(self, suite_name: str, df: DataFrame, run_name: str) -> dict:
        """Validate ``df`` against one suite; a plain summary (see ``summarize``)."""
        import great_expectations as gx  # imported by __init__ already: a lookup

        result = self.checkpoints[suite_name].run(batch_parameters={"dataframe": df},
                                                  run_id=gx.RunIdentifier(run_name=run_name))
        (validation,) = result.run_results.values()
        return summarize(validation)


def gx_expectation(expectation):
    """A suite's expectation as a new GX expectation (a ``RowExpectation`` translated)."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column as GxColumn

    if not isinstance(expectation, RowExpectation):
        return expectation.copy(deep=True)
    e = expectation
    kind = {NOT_NULL: gxe.ExpectColumnValuesToNotBeNull, BETWEEN: gxe.ExpectColumnValuesToBeBetween,
            IN_SET: gxe.ExpectColumnValuesToBeInSet, MATCH_REGEX: gxe.ExpectColumnValuesToMatchRegex}[e.type]
    args = {"column": e.column, "meta": {"name": e.name}}
    if e.type == BETWEEN:
        args.update(min_value=e.min_value, max_value=e.max_value)
    elif e.type == IN_SET:
        args["value_set"] = list(e.value_set)
    elif e.type == MATCH_REGEX:
        args["regex"] = e.regex
    if e.where is not None:
        column, op, value = e.where
        args["row_condition"] = (GxColumn(column) == value) if op == "==" else (GxColumn(column) != value)
    return kind(**args)


def summarize(validation) -> dict:
    """A GX validation result as {success, evaluated, failed: [{expectation, column, unexpected, examples, ...}]}."""
    failed = []
    for r in validation.results:
        if r.success:
            continue
        config = r.expectation_config
        result = r.result or {}
        failed.append({
            "expectation": (config.meta or {}).get("name") or config.type, "type": config.type,
            "column": config.kwargs.get("column"), "unexpected": result.get("unexpected_count"),
            "observed": _jsonable(result.get("observed_value")),
            "examples": [{"value": _jsonable(v)} for v in (result.get("partial_unexpected_list") or [])],
            "error": (r.exception_info or {}).get("exception_message") if (r.exception_info or {}).get(
                "raised_exception") else None,
        })
    return {"success": bool(validation.success), "evaluated": len(validation.results), "failed": failed}


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def describe(summary: dict, limit: int = 8) -> str:
    """One line: what failed, with counts and an example each."""
    parts = []
    for f in summary["failed"][:limit]:
        what = f["expectation"]
        if f.get("unexpected") is not None:
            what += f" ({f['unexpected']} rows"
            if f.get("examples"):
                what += ", e.g. " + ", ".join(str(e.get("value")) for e in f["examples"][:EXAMPLES_PER_EXPECTATION])
            what += ")"
        elif f.get("observed") is not None:
            what += f" (observed {f['observed']!r})"
        parts.append(what)
    more = len(summary["failed"]) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
