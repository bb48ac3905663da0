"""Which learned model classifies: the promoted version, else the model shipped in the package.

A model is loaded once per process and path: the pipeline, shadow mode and hot reload share the
cache, so promoting back to a version seen before costs nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifiers.models import ModelStore, ModelStoreError

SHIPPED_DIR = Path(__file__).with_name("shipped")
DEFAULT_TASK = "type"
log = logging.getLogger(__name__)
_cache: dict[tuple[Path, float], Any] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class LoadedModel:
    version: str  # the promoted name, or "shipped/<task>"
    task: str
    model: Any  # TextCatClassifier: predict(texts) -> [Prediction]


def shipped_name(task: str = DEFAULT_TASK) -> str:
    return f"shipped/{task}"


def _load(version_dir: Path, version: str) -> LoadedModel:
    meta_path = version_dir / "metadata.json"
    if not (version_dir / "model").is_dir() or not meta_path.is_file():
        raise ModelStoreError(f"model {version!r}: {version_dir} has no model/ and metadata.json")
    key = (version_dir.resolve(), meta_path.stat().st_mtime)  # a retrained same-named version is reloaded
    with _lock:
        model = _cache.get(key)
        if model is None:
            from classifiers.textcat import TextCatClassifier

            model = TextCatClassifier.load(version_dir / "model")
            model.predict(["warm up"])
            _cache[key] = model
    return LoadedModel(version, str(json.loads(meta_path.read_text())["task"]), model)


def load_version(store: ModelStore, version: str) -> LoadedModel:
    return _load(store.model_path(version).parent, version)


def load_shipped(task: str = DEFAULT_TASK, root: Path | None = None) -> LoadedModel | None:
    """The shipped model for `task`, or None when the package has none (rules only)."""
    path = (root or SHIPPED_DIR) / task
    if not (path / "model").is_dir():
        return None
    return _load(path, shipped_name(task))


def load_model(store: ModelStore, version: str | None, shipped_root: Path | None = None) -> LoadedModel | None:
    """`version` when given (a promoted name or "shipped/<task>"), else the shipped model, else None."""
    if version is None:
        return load_shipped(root=shipped_root)
    if version.startswith("shipped/"):
        loaded = load_shipped(version.split("/", 1)[1], shipped_root)
        if loaded is None:
            raise ModelStoreError(f"no shipped model {version!r} under {shipped_root or SHIPPED_DIR}")
        return loaded
    return load_version(store, version)
