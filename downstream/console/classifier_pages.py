"""Console pages of the operator loop: model versions with their hold-out evaluation and
confusion matrix, promote / rollback / shadow, and the shadow-mode disagreements to review."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from classifiers import rollout
from classifiers.control import ControlState
from classifiers.models import ModelStore, ModelStoreError
from classifiers.shadow import list_disagreements
from downstream.api.tokens import Principal
from downstream.console.pages import back, render
from downstream.console.session import console_user, console_writer

router = APIRouter(prefix="/console/classifiers", include_in_schema=False)
SHADES = 8


def confusion_cells(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The matrix with a shade class per cell (0..SHADES); the page's CSP allows no inline styles."""
    confusion = metrics.get("confusion")
    if not confusion:
        return None
    peak = max((v for row in confusion["matrix"] for v in row), default=0) or 1
    rows = [{"gold": gold, "cells": [{"n": v, "shade": round(SHADES * v / peak)} for v in row]}
            for gold, row in zip(confusion["labels"], confusion["matrix"], strict=True)]
    return {"labels": confusion["labels"], "rows": rows}


@router.get("", response_class=HTMLResponse)
def classifiers_page(request: Request, principal: Annotated[Principal, Depends(console_user)],
                     version: str = "", notice: str = "") -> HTMLResponse:
    store = ModelStore()
    versions = list(reversed(store.versions()))
    chosen = next((v for v in versions if v.version == version), None) or next(
        (v for v in versions if v.version == store.active()), versions[0] if versions else None)
    disagreements = list_disagreements(request.app.state.engine, 50)
    return render(request, "classifiers.html", principal, versions=versions, active=store.active(),
                  serving_task=rollout.serving_task(store),
                  shadow=store.shadow(), chosen=chosen, confusion=confusion_cells(chosen.metrics) if chosen else None,
                  history=list(reversed(store.history()))[:20], disagreements=disagreements, notice=notice)


@router.post("")
def change_versions(request: Request, principal: Annotated[Principal, Depends(console_writer)],
                    action: Annotated[str, Form()], version: Annotated[str, Form()] = "") -> Response:
    """promote VERSION (promote-replace-task: one predicting another label than the model served now),
    rollback, shadow VERSION, shadow-off; running pipelines follow the control row."""
    engine, by = request.app.state.engine, principal.name
    changes: dict[str, Callable[[], ControlState]] = {
        "promote": lambda: rollout.promote(engine, version, by),
        "promote-replace-task": lambda: rollout.promote(engine, version, by, replace_task=True),
        "rollback": lambda: rollout.rollback(engine, by),
        "shadow": lambda: rollout.set_shadow(engine, version, by),
        "shadow-off": lambda: rollout.set_shadow(engine, None, by)}
    if action not in changes:
        raise HTTPException(422, detail=f"unknown action {action!r}")
    try:
        state = changes[action]()
    except (ModelStoreError, rollout.ControlNotWritten) as exc:
        return back("/console/classifiers", str(exc))
    notice = (f"active: {state.active_version or 'default'}, shadow: {state.shadow_version or 'off'} "
              f"(control generation {state.generation}; running pipelines switch within seconds)")
    return back("/console/classifiers", notice)
