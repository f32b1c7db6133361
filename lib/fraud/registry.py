"""The model registry under ``models_root`` (default ``<lake root>/models``), on local disk or S3 (pyarrow filesystems).

Layout::

    models/current.json                 {"version": "v0003", "history": ["v0001", "v0003"]}
    models/challenger.json              {"version": "v0004"}: scored in shadow (fraud.shadow), never alerting
    models/versions/v0003/model/        Spark PipelineModel
    models/versions/v0003/metadata.json metrics, features, training data snapshot, code revision
    models/gate/out-of-profile.jsonl    the gate's out-of-profile events (JSON lines): data, written by
    models/gate/out-of-profile.json     whoever generates them (``python -m fraud_simulator.history``),
                                        with what they are (profile, seed, events)

Promotion rewrites ``current.json`` (a single small object: atomic on S3, renamed into place
locally), and clears ``challenger.json`` when it named the promoted version; the running job
reads both between micro-batches.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from pyarrow import fs

from fraud.cli import UserError
from fraud.config import Config

_VERSION = re.compile(r"^v\d{4}$")
_GATE = "gate/out-of-profile"


@dataclass(frozen=True)
class ModelEntry:
    version: str
    model_path: str
    metadata: dict


class Registry:
    def __init__(self, root_uri: str):
        self.root_uri = root_uri.rstrip("/")
        self._fs, self._root = fs.FileSystem.from_uri(self.root_uri if "://" in self.root_uri
                                                      else f"file://{self.root_uri}")

    @classmethod
    def for_config(cls, config: Config) -> Registry:
        return cls(config.models_root or config.table_path("models"))

    # --- reading -----------------------------------------------------------------
    def _read_json(self, relative: str) -> dict | None:
        try:
            with self._fs.open_input_stream(f"{self._root}/{relative}") as stream:
                return json.loads(stream.read())
        except FileNotFoundError:
            return None

    def versions(self) -> list[str]:
        selector = fs.FileSelector(f"{self._root}/versions", allow_not_found=True)
        names = [info.base_name for info in self._fs.get_file_info(selector) if info.type == fs.FileType.Directory]
        return sorted(n for n in names if _VERSION.fullmatch(n))

    def pointer(self) -> dict:
        pointer = self._read_json("current.json") or {"version": None, "history": []}
        for version in [pointer.get("version"), *pointer.get("history", [])]:
            self._checked(version, "current.json")
        return pointer

    def current_version(self) -> str | None:
        return self.pointer()["version"]

    def challenger_version(self) -> str | None:
        return self._checked((self._read_json("challenger.json") or {}).get("version"), "challenger.json")

    def _checked(self, version, pointer: str) -> str | None:
        """A version a pointer names, refused unless it is one (``v0001``): a pointer is a file anyone
        with write access to the bucket can edit, and its value becomes a path."""
        if version is not None and not (isinstance(version, str) and _VERSION.fullmatch(version)):
            raise UserError(f"{self.root_uri}/{pointer} names {str(version)[:40]!r}, not a model version (v0001 ...)")
        return version

    def entry(self, version: str) -> ModelEntry:
        self._checked(version, "the request")
        metadata = self._read_json(f"versions/{version}/metadata.json")
        if metadata is None:
            raise UserError(f"model version {version} is not in the registry at {self.root_uri}")
        return ModelEntry(version, f"{self.root_uri}/versions/{version}/model", metadata)

    def current(self) -> ModelEntry | None:
        version = self.current_version()
        return self.entry(version) if version else None

    def gate_events(self) -> tuple[list[str], dict]:
        """The out-of-profile gate's events (JSON lines) and what they are; a one-line error when absent."""
        about = self._read_json(f"{_GATE}.json")
        try:
            with self._fs.open_input_stream(f"{self._root}/{_GATE}.jsonl") as stream:
                lines = stream.read().decode().splitlines()
        except FileNotFoundError:
            lines = None
        if about is None or lines is None:
            raise UserError(f"the out-of-profile gate's events are not in the registry ({self.root_uri}/{_GATE}.jsonl):"
                            " write them with `python -m fraud_simulator.history DIR` (docs/model.md)")
        return lines, about

    # --- writing -----------------------------------------------------------------
    def write_gate_events(self, lines: list[str], about: dict) -> None:
        """Replace the gate's events: the data first, then what they are (the file training checks)."""
        path = f"{self._root}/{_GATE}.jsonl"
        self._fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self._fs.open_output_stream(f"{path}.tmp") as stream:
            stream.write("".join(f"{line}\n" for line in lines).encode())
        self._fs.move(f"{path}.tmp", path)
        self._write_json(f"{_GATE}.json", {**about, "events": len(lines)})

    def next_version(self) -> str:
        existing = self.versions()
        return f"v{int(existing[-1][1:]) + 1:04d}" if existing else "v0001"

    def model_path(self, version: str) -> str:
        return f"{self.root_uri}/versions/{version}/model"

    def write_metadata(self, version: str, metadata: dict) -> None:
        self._write_json(f"versions/{version}/metadata.json", metadata)

    def promote(self, version: str) -> dict:
        self.entry(version)  # must exist
        pointer = self.pointer()
        history = [v for v in pointer["history"] if v != version] + [version]
        new = {"version": version, "history": history, "promoted_at": datetime.now(timezone.utc).isoformat()}
        self._write_json("current.json", new)
        if self.challenger_version() == version:
            self.set_challenger(None)  # the challenger won: nothing left to shadow
        return new

    def set_challenger(self, version: str | None) -> dict:
        """Score ``version`` beside the current model from the next micro-batch on (``None``: stop)."""
        if version is not None:
            self.entry(version)  # must exist
            if version == self.current_version():
                raise UserError(f"{version} is the current model: a challenger must be another version")
        new = {"version": version, "set_at": datetime.now(timezone.utc).isoformat()}
        self._write_json("challenger.json", new)
        return new

    def rollback_target(self) -> str:
        """The version a rollback would make current."""
        history = self.pointer()["history"]
        if len(history) < 2:
            raise UserError("nothing to roll back to: fewer than two versions were ever promoted")
        return history[-2]

    def rollback(self) -> dict:
        """Point ``current`` back to the version promoted before it."""
        history = self.pointer()["history"]
        previous = self.rollback_target()
        new = {"version": previous, "history": history[:-1],
               "promoted_at": datetime.now(timezone.utc).isoformat()}
        self._write_json("current.json", new)
        return new

    def _write_json(self, relative: str, payload: dict) -> None:
        path = f"{self._root}/{relative}"
        self._fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        tmp = f"{path}.tmp"
        with self._fs.open_output_stream(tmp) as stream:
            stream.write(json.dumps(payload, indent=2, sort_keys=True).encode())
        self._fs.move(tmp, path)
