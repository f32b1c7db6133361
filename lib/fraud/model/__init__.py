"""The 10-class RandomForest: pipeline, evaluation and gate, training and registration, versions.

Modules in the order a model is made: ``forest`` (label, class weights, the MLlib pipeline,
fit), ``evaluation`` (held-out metrics, the promotion gate), ``training`` (the training
job: silver snapshot, fit, evaluate, gate, register), ``versions`` (the PostgreSQL mirror,
promote and rollback). The model's classes are the contract's (``fraud.schemas.MODEL_CLASSES``).

CLI: ``python -m fraud.model show|list|promote VERSION|rollback [--json]``.
"""
