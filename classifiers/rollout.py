"""Promote, roll back and shadow a model version: the one place that changes which version runs.

Each change rewrites the model store's active.json, then the store's control row, which running
pipelines poll (classifiers/control.py). The CLI (`intake classifiers promote|rollback|shadow`), the
REST API (/v1/classifiers) and the console's classifiers page all call these functions.
"""

from __future__ import annotations

from sqlalchemy import Engine

from classifiers.control import ControlState, write_control
from classifiers.models import ModelStore, ModelStoreError


class ControlNotWritten(RuntimeError):
    """active.json was changed, but the control row could not be written: running pipelines were not told."""


def _publish(engine: Engine, store: ModelStore, by: str) -> ControlState:
    try:
        return write_control(engine, store.active(), store.shadow(), by)
    except Exception as exc:  # whatever the driver raised, the file record already changed: say so
        raise ControlNotWritten(f"active.json updated, but running pipelines were not told (the control row "
                                f"could not be written: {exc.__class__.__name__}: {exc})") from exc


def promote(engine: Engine, version: str, by: str, store: ModelStore | None = None,
            replace_task: bool = False) -> ControlState:
    """Make `version` active. Raises ModelStoreError (nothing changed) or ControlNotWritten. A version
    predicting another label than the model served now is refused unless `replace_task`. Promoting the
    active version again changes nothing but tells running pipelines again (the way to recover from
    ControlNotWritten)."""
    store = store or ModelStore()
    if store.active() != version:
        check_loads(store, version)
    store.promote(version, serving_task=None if replace_task else serving_task(store))
    return _publish(engine, store, by)


def check_loads(store: ModelStore, version: str) -> None:
    """A version the pipelines could not load is not promoted (they would keep their model, but say
    nothing to whoever promoted it)."""
    from classifiers.active_model import load_version

    try:
        load_version(store, version)
    except ModelStoreError:
        raise
    except Exception as exc:
        raise ModelStoreError(f"version {version!r} cannot be loaded ({exc.__class__.__name__}: {exc}); "
                              "nothing changed") from exc


def serving_task(store: ModelStore) -> str | None:
    """The task of the model the pipeline serves: the active version's, else the shipped model's."""
    from classifiers.active_model import DEFAULT_TASK, SHIPPED_DIR

    active = store.active()
    if active is not None:
        return store.metadata(active).task
    return DEFAULT_TASK if (SHIPPED_DIR / DEFAULT_TASK).is_dir() else None


def rollback(engine: Engine, by: str, store: ModelStore | None = None) -> ControlState:
    """Make the version active before the current one active again (none: the shipped model, else rules)."""
    store = store or ModelStore()
    store.rollback()
    return _publish(engine, store, by)


def set_shadow(engine: Engine, version: str | None, by: str, store: ModelStore | None = None) -> ControlState:
    """Run `version` beside the active one and record disagreements; None switches shadow mode off."""
    store = store or ModelStore()
    store.set_shadow(version)
    return _publish(engine, store, by)
