"""Registered versions beyond the registry: the PostgreSQL mirror, promote/rollback, summaries.

The registry (``fraud.registry``) is the source of truth; ``model_versions`` in PostgreSQL
mirrors it for the Dash model page.
"""

from __future__ import annotations

from fraud.config import Config
from fraud.registry import Registry


def mirror_to_postgres(config: Config, metadata: dict, promote_as: str | None, move_pointer=lambda: None) -> None:
    """Metrics for the Dash model page (the registry stays the source of truth); with ``promote_as``
    (who promotes), the version becomes current there, recorded, and ``move_pointer`` moves the
    registry's pointer before the transaction commits."""
    from psycopg.types.json import Jsonb

    from fraud.db import connect, postgres_dsn

    with connect(postgres_dsn(config, "batch")) as conn, conn.transaction():
        conn.execute(
            "INSERT INTO model_versions (version, created_at, metrics, features, training_data, code_revision)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (version) DO UPDATE SET metrics = EXCLUDED.metrics",
            (metadata["version"], metadata["created_at"], Jsonb(metadata["metrics"]), Jsonb(metadata["features"]),
             Jsonb(metadata["training_data"]), metadata["code_revision"]))
        if promote_as is not None:
            _record(conn, "promote", metadata["version"], promote_as)
            move_pointer()


def _record(conn, action: str, version: str, actor: str) -> None:
    conn.execute("UPDATE model_versions SET is_current = (version = %s),"
                 " promoted_at = CASE WHEN version = %s THEN now() ELSE promoted_at END,"
                 " promoted_by = CASE WHEN version = %s THEN %s ELSE promoted_by END",
                 (version, version, version, actor))
    conn.execute("INSERT INTO model_pointer_changes (action, version, actor) VALUES (%s, %s, %s)",
                 (action, version, actor))


def _move(config: Config, action: str, version: str, component: str, actor: str, move) -> dict:
    """Record the move in PostgreSQL (as ``component``: the model CLI's batch role or the Dash app's),
    then move the registry's pointer, then commit: a move that fails leaves no record, and a record
    that cannot be written leaves the pointer where it was."""
    from fraud.db import connect, postgres_dsn

    with connect(postgres_dsn(config, component)) as conn, conn.transaction():
        _record(conn, action, version, actor)
        return move()


def promote_version(config: Config, version: str, component: str, actor: str) -> dict:
    """Move the registry's ``current`` pointer to ``version``, recorded as ``actor``'s."""
    registry = Registry.for_config(config)
    registry.entry(version)  # must exist before anything is recorded
    return _move(config, "promote", version, component, actor, lambda: registry.promote(version))


def rollback_version(config: Config, component: str, actor: str) -> dict:
    """Point ``current`` back to the version promoted before it, recorded as ``actor``'s."""
    registry = Registry.for_config(config)
    return _move(config, "rollback", registry.rollback_target(), component, actor, registry.rollback)


def summary(entry) -> dict:
    """What ``show --json`` prints: the version and its headline metrics."""
    metrics = entry.metadata["metrics"]
    return {
        "version": entry.version,
        "created_at": entry.metadata["created_at"],
        "accuracy": metrics["accuracy"],
        "weighted_f1": metrics["weighted_f1"],
        "macro_f1": metrics["macro_f1"],
        "per_class_f1": metrics["per_class_f1"],
        "sequence_recall": metrics["sequence_detection"]["recall"],
        "alert_threshold": entry.metadata.get("alert_threshold"),
        # Traffic from a profile the model never trained on (model.gate.out_of_profile).
        "out_of_profile": metrics.get("out_of_profile"),
        "training_data": entry.metadata["training_data"],
        "code_revision": entry.metadata["code_revision"],
        "model_size_bytes": entry.metadata["model_size_bytes"],
        "training_seconds": entry.metadata["training_seconds"],
        "path": entry.model_path,
    }
