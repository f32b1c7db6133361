"""The registered pipeline evaluated on the driver: a micro-batch's silver rows, as the Arrow table the
alert path already holds, -> class probabilities, bit for bit what MLlib's ``PipelineModel.transform``
computes (``tests/test_driver_scorer.py`` on a fitted forest, ``tests/test_stream_e2e.py`` on the live runs),
with no Spark job.

Why: the stream scored each batch with ``transform`` and collected the alert rows. For 600 rows that
took 773 ms on 2 cores (median of 9: planning six stages, serializing the 22,000-node forest into
every scoring task, the job), against 15 ms here (the forest's 60 trees walked level by level with
numpy). Batch scoring (evaluation, notebooks, benchmarks) stays on MLlib.

What is mirrored is ``fraud.model.forest.build_pipeline`` (its stages' data: ``fraud.model.inputs``): the
input fills, the category index, the forest. A model whose stages say anything else (another
statement, input order, category handling, a categorical split) is refused when it is loaded, with
what differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraud.model.inputs import AS_NUMBERS_SQL, ASSEMBLED_COLUMNS, FILL_SQL
from fraud.model_classes import MODEL_CLASSES
from fraud.schemas import CATEGORICAL_FEATURES, NUMERIC_FEATURES


class ModelMismatch(ValueError):
    """The registered pipeline is not the one this module mirrors."""


@dataclass(frozen=True)
class Forest:
    """Every tree's nodes as arrays indexed by node id: split feature and threshold (go left when
    ``value <= threshold``, as MLlib's continuous splits), children (-1 at a leaf), and each node's
    class counts divided by their sum (MLlib's vote of a leaf)."""

    feature: list[np.ndarray]
    threshold: list[np.ndarray]
    left: list[np.ndarray]
    right: list[np.ndarray]
    votes: list[np.ndarray]

    @classmethod
    def of(cls, nodes_table: pa.Table) -> "Forest":
        """From the forest stage's saved node table (one row per node)."""
        table = nodes_table.sort_by([("treeID", "ascending")])
        nodes = pc.struct_field(table.column("nodeData"), "id").to_numpy()
        trees = table.column("treeID").to_numpy()
        data = table.column("nodeData").combine_chunks()
        split = data.field("split")
        if (pc.max(split.field("numCategories")).as_py() or -1) >= 0:
            raise ModelMismatch("the forest has categorical splits; this scorer mirrors continuous ones only")
        thresholds = np.array([t[0] if t else np.nan for t in split.field("leftCategoriesOrThreshold").to_pylist()])
        counts = np.array(data.field("impurityStats").to_pylist(), dtype=np.float64)
        columns = dict(feature=split.field("featureIndex").to_numpy(), threshold=thresholds,
                       left=data.field("leftChild").to_numpy(), right=data.field("rightChild").to_numpy(),
                       votes=counts / _row_sums(counts)[:, None])
        forest: dict[str, list[np.ndarray]] = {name: [] for name in columns}
        for tree in np.unique(trees):
            rows = np.flatnonzero(trees == tree)
            order = rows[np.argsort(nodes[rows])]
            if not np.array_equal(nodes[order], np.arange(len(order))):
                raise ModelMismatch(f"tree {tree}: node ids are not 0..{len(order) - 1}")
            for name, values in columns.items():
                forest[name].append(values[order])
        return cls(**forest)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """Rows of ``inputs`` (the assembled feature vectors) -> class probabilities: the leaves' votes
        summed over trees in tree order, then divided by their sum, in MLlib's order of operations."""
        rows = np.arange(len(inputs))
        raw = np.zeros((len(inputs), self.votes[0].shape[1]))
        for feature, threshold, left, right, votes in zip(self.feature, self.threshold, self.left, self.right,
                                                          self.votes):
            node = np.zeros(len(inputs), dtype=np.int64)
            inner = left[node] >= 0
            while inner.any():
                at = node[inner]
                goes_left = inputs[rows[inner], feature[at]] <= threshold[at]
                node[inner] = np.where(goes_left, left[at], right[at])
                inner = left[node] >= 0
            raw += votes[node]
        return raw / _row_sums(raw)[:, None]


    def contributions(self, inputs: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Why each row got its probability of class ``classes[i]``, exactly: (bias, per-input
        contributions), with ``bias[i] + contributions[i].sum()`` the row's probability of that class.

        Tree-path attribution: in each tree, every split on the row's path moves the class's vote
        from the node's to the chosen child's; that move is credited to the split's input. The root's
        vote is the bias. Averaged over the trees (each leaf's votes sum to 1, so MLlib's normalised
        sum is this mean), the path's moves add up to the leaf's vote minus the root's."""
        n, trees = len(inputs), len(self.votes)
        rows = np.arange(n)
        bias = np.zeros(n)
        contributions = np.zeros((n, inputs.shape[1]))
        for feature, threshold, left, right, votes in zip(self.feature, self.threshold, self.left, self.right,
                                                          self.votes):
            node = np.zeros(n, dtype=np.int64)
            bias += votes[0, classes]
            inner = left[node] >= 0
            while inner.any():
                at, who = node[inner], rows[inner]
                goes_left = inputs[who, feature[at]] <= threshold[at]
                child = np.where(goes_left, left[at], right[at])
                np.add.at(contributions, (who, feature[at]), votes[child, classes[who]] - votes[at, classes[who]])
                node[inner] = child
                inner = left[node] >= 0
        return bias / trees, contributions / trees


def _row_sums(matrix: np.ndarray) -> np.ndarray:
    """Each row summed left to right, as Scala's ``Array.sum`` (numpy's ``sum`` is pairwise: the last
    bit can differ)."""
    total = matrix[:, 0].copy()
    for k in range(1, matrix.shape[1]):
        total += matrix[:, k]
    return total


@dataclass(frozen=True)
class DriverScorer:
    """``build_pipeline``'s fitted stages on the driver: fills, category indices, forest."""

    categories: dict[str, list[str]]  # per categorical input, the index's labels in index order
    forest: Forest

    @classmethod
    def load(cls, model_path: str) -> "DriverScorer":
        """From the folder a fitted ``build_pipeline`` is saved in (MLlib's layout: each stage's metadata as
        JSON, the index's labels and the forest's nodes as Parquet), read with pyarrow: no Spark job and no
        ``pyspark.ml``, so a job starting up does not wait for them. Raises ``ModelMismatch``."""
        stages = _SavedStages(model_path)
        kinds = [stage["class"].rsplit(".", 1)[-1] for stage in stages.metadata]
        expected = ["SQLTransformer", "StringIndexerModel", "SQLTransformer", "VectorAssembler",
                    "RandomForestClassificationModel", "IndexToString"]
        if kinds != expected:
            raise ModelMismatch(f"stages {kinds}, expected {expected}")
        fill, index, as_numbers, assemble, forest, to_class = (_params(stage) for stage in stages.metadata)
        checks = {
            "input fills": (fill["statement"], FILL_SQL),
            "category indices": (as_numbers["statement"], AS_NUMBERS_SQL),
            "assembled inputs": (assemble["inputCols"], ASSEMBLED_COLUMNS),
            "unseen categories": (index["handleInvalid"], "keep"),
            "indexed inputs": (index["inputCols"], [f"m_{c}" for c in CATEGORICAL_FEATURES]),
            "classes": (to_class["labels"], list(MODEL_CLASSES)),
            "forest thresholds": ("thresholds" in forest, False),  # MLlib gives it no default
        }
        for what, (found, wanted) in checks.items():
            if found != wanted:
                raise ModelMismatch(f"{what}: the model has {found!r}, this scorer mirrors {wanted!r}")
        labels = stages.table(kinds.index("StringIndexerModel")).column("labelsArray")[0].as_py()
        return cls(dict(zip(CATEGORICAL_FEATURES, labels)),
                   Forest.of(stages.table(kinds.index("RandomForestClassificationModel"))))

    def inputs(self, silver: pa.Table) -> np.ndarray:
        """The assembled feature vectors: numeric inputs as doubles, absent -1; categories by index,
        absent ``none``, unseen last. A NaN input fails, as MLlib's ``VectorAssembler`` does."""
        columns = [pc.fill_null(pc.cast(silver.column(c), pa.float64()), -1.0).to_numpy(zero_copy_only=False)
                   for c in NUMERIC_FEATURES]
        for name, labels in self.categories.items():
            index = pa.array(labels)
            found = pc.index_in(pc.fill_null(silver.column(name), "none"), value_set=index)
            columns.append(pc.fill_null(found, len(labels)).to_numpy(zero_copy_only=False).astype(np.float64))
        inputs = np.column_stack(columns) if columns else np.empty((silver.num_rows, 0))
        if np.isnan(inputs).any():
            bad = [c for c, values in zip(NUMERIC_FEATURES, columns) if np.isnan(values).any()]
            raise ValueError(f"NaN in model inputs {bad}: MLlib's VectorAssembler refuses them too")
        return inputs.reshape(silver.num_rows, len(NUMERIC_FEATURES) + len(self.categories))

    def probabilities(self, silver: pa.Table) -> np.ndarray:
        return self.forest.probabilities(self.inputs(silver))

    def top_features(self, silver: pa.Table, classes: np.ndarray, n: int) -> list[list[dict]]:
        """Per row, the ``n`` inputs that raised its probability of class ``classes[i]`` the most
        (``Forest.contributions``), largest first: feature, the row's value (as in silver; null when
        absent), contribution (probability points)."""
        bias, contributions = self.forest.contributions(self.inputs(silver), classes)
        names = [*NUMERIC_FEATURES, *self.categories]
        values = {name: silver.column(name).to_pylist() for name in names}
        top = []
        for i, row in enumerate(contributions):
            order = [j for j in np.argsort(-row, kind="stable")[:n] if row[j] > 0]
            top.append([{"feature": names[j], "value": values[names[j]][i], "contribution": round(float(row[j]), 4)}
                        for j in order])
        return top


class _SavedStages:
    """A saved ``PipelineModel``'s stages, in order: each one's metadata (MLlib's JSON) and data table."""

    def __init__(self, model_path: str):
        from fraud.lake import file_system_of

        self.fs, root = file_system_of(model_path)
        uids = self._json(f"{root}/metadata")["paramMap"]["stageUids"]
        self.folders = [f"{root}/stages/{i}_{uid}" for i, uid in enumerate(uids)]
        self.metadata = [self._json(f"{folder}/metadata") for folder in self.folders]

    def _json(self, folder: str) -> dict:
        from pyarrow import fs

        parts = sorted(f.path for f in self.fs.get_file_info(fs.FileSelector(folder))
                       if f.base_name.startswith("part-"))
        if not parts:
            raise ModelMismatch(f"{folder} holds no saved metadata: not a model MLlib saved")
        with self.fs.open_input_stream(parts[0]) as stream:
            return json.loads(stream.read().decode().splitlines()[0])

    def table(self, stage: int) -> pa.Table:
        return pq.read_table(f"{self.folders[stage]}/data", filesystem=self.fs)


def _params(metadata: dict) -> dict:
    """A stage's parameters as MLlib sets them: its defaults, then what was set."""
    return {**metadata.get("defaultParamMap", {}), **metadata["paramMap"]}
