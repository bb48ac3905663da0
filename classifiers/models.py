"""Model versions on disk: each version is a spaCy model plus metadata.json; one is active.

Layout under the models directory (INTAKE_MODELS_DIR, default var/models):
  versions/<name>/model/          the spaCy pipeline
  versions/<name>/metadata.json   data hash, label set, task, metrics, creation time, seed
  active.json                     {"active": name | null, "shadow": name | null,
                                   "history": [{"action", "version", "previous", "at"}]}
Promote, rollback and shadow rewrite active.json atomically (write then rename), so a process
reading it never reads half a file. Running pipelines learn of changes from the store's
classifier_control row (classifiers/control.py), which classifiers/rollout.py writes after this file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path("var/models")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ModelStoreError(ValueError):
    """A version is unknown, badly named or cannot be changed; the message names it."""


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    version: str
    task: str
    labels: list[str]
    data_hash: str
    n_examples: int
    seed: int
    created_at: str
    sources: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def data_hash(pairs: Iterable[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for text, label in pairs:
        h.update(json.dumps([text, label], ensure_ascii=False).encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def models_dir() -> Path:
    return Path(os.environ.get("INTAKE_MODELS_DIR") or DEFAULT_DIR)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ModelStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or models_dir()

    def _dir(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ModelStoreError(f"bad version name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
        return self.root / "versions" / name

    def model_path(self, name: str) -> Path:
        path = self._dir(name) / "model"
        if not path.is_dir():
            raise ModelStoreError(f"no model version {name!r} under {self.root}")
        return path

    def exists(self, name: str) -> bool:
        return self._dir(name).exists()

    def refuse_existing(self, name: str) -> None:
        """Versions are kept as trained: the history, shadow runs and evaluations refer to them by name."""
        if self.exists(name):
            raise ModelStoreError(f"version {name!r} already exists under {self.root}; train under a new name")

    def save(self, name: str, classifier: Any, meta: ModelMetadata) -> Path:
        """Write a new version; an existing name is refused."""
        target = self._dir(name)
        self.refuse_existing(name)
        tmp = target.with_name(f".{name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        classifier.save(tmp / "model")
        (tmp / "metadata.json").write_text(json.dumps(asdict(meta), indent=2, ensure_ascii=False) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        return target

    def metadata(self, name: str) -> ModelMetadata:
        path = self._dir(name) / "metadata.json"
        if not path.is_file():
            raise ModelStoreError(f"no model version {name!r} under {self.root}")
        return ModelMetadata(**json.loads(path.read_text()))

    def versions(self) -> list[ModelMetadata]:
        base = self.root / "versions"
        names = sorted(p.name for p in base.iterdir() if (p / "metadata.json").is_file()) if base.is_dir() else []
        return sorted((self.metadata(n) for n in names), key=lambda m: (m.created_at, m.version))

    def _state(self) -> dict[str, Any]:
        path = self.root / "active.json"
        state = json.loads(path.read_text()) if path.is_file() else {"active": None, "history": []}
        state.setdefault("shadow", None)
        return state

    def _write_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / ".active.json.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.root / "active.json")

    def active(self) -> str | None:
        return self._state()["active"]

    def shadow(self) -> str | None:
        return self._state()["shadow"]

    def set_shadow(self, name: str | None) -> None:
        """Run `name` in shadow beside the active version (None: shadow mode off)."""
        if name is not None:
            self.model_path(name)
        state = self._state()
        if name is not None and name == state["active"]:
            raise ModelStoreError(f"version {name!r} is the active one: a shadow runs another version beside it")
        state["history"].append({"action": "shadow", "version": name, "previous": state["shadow"], "at": now()})
        state["shadow"] = name
        self._write_state(state)

    def history(self) -> list[dict[str, Any]]:
        return self._state()["history"]

    def promote(self, name: str, serving_task: str | None = None) -> bool:
        """Make `name` active; False when it already was (nothing recorded: rolling back must not
        land on the same version). With `serving_task` (the task of the model the pipeline serves now),
        a version predicting another label is refused: the pipeline serves one model, so promoting it
        would leave that task to the rules alone."""
        self.model_path(name)
        state = self._state()
        if name == state["active"]:
            return False
        task = self.metadata(name).task
        if serving_task is not None and task != serving_task:
            raise ModelStoreError(f"version {name!r} predicts {task}, the model the pipeline serves predicts "
                                  f"{serving_task}: promoting it would leave {serving_task} to the rules alone "
                                  f"(`intake classifiers promote --replace-task` does that)")
        state["history"].append({"action": "promote", "version": name, "previous": state["active"], "at": now()})
        state["active"] = name
        self._end_shadow_of_active(state)
        self._write_state(state)
        return True

    @staticmethod
    def _end_shadow_of_active(state: dict[str, Any]) -> None:
        """A version promoted or rolled back to while it ran in shadow stops being its own shadow."""
        if state["shadow"] is not None and state["shadow"] == state["active"]:
            state["history"].append({"action": "shadow", "version": None, "previous": state["shadow"], "at": now()})
            state["shadow"] = None

    def rollback(self) -> str | None:
        """Make the version active before the current one active again; returns it (None: rules only)."""
        state = self._state()
        if state["active"] is None:
            raise ModelStoreError("nothing to roll back: no version is active")
        # walk back past earlier rollbacks: the previous of the promote that made the current version active
        promotes = [h for h in state["history"] if h["action"] == "promote" and h["version"] == state["active"]]
        previous = promotes[-1]["previous"] if promotes else None
        state["history"].append({"action": "rollback", "version": previous, "previous": state["active"], "at": now()})
        state["active"] = previous
        self._end_shadow_of_active(state)
        self._write_state(state)
        return previous
