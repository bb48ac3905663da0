"""Hot reload: a pipeline process polls for a promoted version, a shadow version and changed rules
files, and swaps them in without a restart.

Every POLL_INTERVAL_S, at the start of a batch (a process with no traffic has nothing to
classify), the process reads the store's classifier_control row (no row: active.json) and hashes
the rules files. A new model is loaded before it is swapped in, so the batch that notices waits
for the load (about a second) and no batch is classified half by one version and half by another.
A version that cannot be loaded, or rules files that do not validate, are logged and the process
keeps what it had: a bad rollout never stops the pipeline.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from classifiers.active_model import LoadedModel, load_model
from classifiers.control import ControlState, read_control
from classifiers.live import LiveClassifier, Snapshot
from classifiers.models import ModelStore
from classifiers.rules import RULES_DIR, RuleClassifier, RulesError, rule_files

POLL_INTERVAL_S = 5.0
log = logging.getLogger("classifiers.reload")


def rules_hash(rules_dir: Path = RULES_DIR) -> str:
    h = hashlib.sha256()
    for path in rule_files(rules_dir):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _read_engine(url: str) -> Engine:
    # A plain engine: the store's SQLite engine takes the write lock on every BEGIN, a poll needs none;
    # and no pool, so a process holds no idle connection between polls seconds apart.
    return create_engine(url, poolclass=NullPool)


class ClassifierReloader:
    """Owns a LiveClassifier and keeps it in line with the control row and the rules files."""

    def __init__(self, store_url: str | None, models: ModelStore | None = None, rules_dir: Path = RULES_DIR,
                 shipped_root: Path | None = None, interval_s: float = POLL_INTERVAL_S,
                 rules: RuleClassifier | None = None) -> None:
        self.models = models or ModelStore()
        self.rules_dir, self.shipped_root, self.interval_s = rules_dir, shipped_root, interval_s
        self._engine = _read_engine(store_url) if store_url else None
        self._last_poll = time.monotonic()
        self._last_error = ""
        wanted = self._wanted() or ControlState(self.models.active(), self.models.shadow())
        active = self._load(wanted.active_version, None, "active")
        shadow = self._load(wanted.shadow_version, None, "shadow") if wanted.shadow_version else None
        self._wanted_seen = wanted
        self.live = LiveClassifier(Snapshot(rules or RuleClassifier(rules_dir), rules_hash(rules_dir), active, shadow))
        log.info("classifier: using version %s, shadow %s, rules %s", _name(active), _name(shadow),
                 self.live.snapshot.rules_hash)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def maybe_refresh(self) -> bool:
        """Poll when the interval has passed; True when something changed."""
        if time.monotonic() - self._last_poll < self.interval_s:
            return False
        return self.refresh()

    def refresh(self) -> bool:
        self._last_poll = time.monotonic()
        snap = self.live.snapshot
        wanted = self._wanted()
        if wanted is None:  # no row in the store (or no store): the file record speaks
            wanted = ControlState(self.models.active(), self.models.shadow())
        active, shadow, rules, digest = snap.active, snap.shadow, snap.rules, snap.rules_hash
        if wanted.active_version != self._wanted_seen.active_version:  # a failed load is not retried every poll
            loaded = self._load(wanted.active_version, snap.active, "active")
            if loaded is not snap.active:
                log.info("classifier: now using version %s (was %s)", _name(loaded), _name(snap.active))
                active = loaded
        if wanted.shadow_version != self._wanted_seen.shadow_version:
            loaded = self._load(wanted.shadow_version, snap.shadow, "shadow") if wanted.shadow_version else None
            if loaded is not snap.shadow:
                log.info("classifier: shadow version now %s (was %s)", _name(loaded), _name(snap.shadow))
                shadow = loaded
        self._wanted_seen = wanted
        current = rules_hash(self.rules_dir)
        if current != snap.rules_hash:
            try:
                reloaded = RuleClassifier(self.rules_dir)
                if missing := sorted(snap.rules.languages - reloaded.languages):
                    raise RulesError(f"no rules file for {', '.join(missing)} any more (deleted or renamed?)")
                rules = reloaded
                log.info("classifier: rules reloaded from %s (hash %s, was %s)", self.rules_dir, current, digest)
            except Exception as exc:  # RulesError names file and line; anything else must not stop the pipeline
                log.error("classifier: rules in %s not reloaded, keeping the previous ones: %s", self.rules_dir, exc)
            digest = current  # a bad file is reported once, not every poll
        new = Snapshot(rules, digest, active, shadow)
        if new == snap:
            return False
        self.live.snapshot = new
        return True

    def _wanted(self) -> ControlState | None:
        if self._engine is None:
            return None
        try:
            with self._engine.connect() as conn:
                state = read_control(conn)
            self._last_error = ""
            return state
        except Exception as exc:  # the store is down or not migrated yet: keep what we have
            message = f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if message != self._last_error:
                log.warning("classifier: cannot read the control row (%s); keeping the current versions", message)
                self._last_error = message
            return self._wanted_seen if hasattr(self, "_wanted_seen") else None

    def _load(self, version: str | None, current: LoadedModel | None, role: str) -> LoadedModel | None:
        try:
            return load_model(self.models, version, self.shipped_root)
        except Exception as exc:
            log.error("classifier: cannot load %s version %s (%s); keeping %s", role, version, exc, _name(current))
            return current


def _name(model: LoadedModel | None) -> str:
    return model.version if model else "none (rules only)"
