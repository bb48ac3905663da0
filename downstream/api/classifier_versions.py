"""/v1/classifiers: model versions with their hold-out metrics; promote, roll back, shadow (operator, admin).

The same operations as `intake classifiers promote|rollback|shadow` and the console's classifiers page,
through classifiers/rollout.py: the model store's active.json, then the store's control row, which
running pipelines poll.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from classifiers import rollout
from classifiers.control import ControlState
from classifiers.models import ModelStore, ModelStoreError
from downstream.api.auth import READERS, WRITERS, require_role
from downstream.api.tokens import Principal

router = APIRouter(prefix="/v1/classifiers", tags=["classifiers"])
Changer = Annotated[Principal, Depends(require_role(*WRITERS))]


class VersionChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str | None = Field(description="a version name; for shadow, null switches shadow mode off")


class PromoteChoice(VersionChoice):
    replace_task: bool = Field(False, description="promote a version that predicts another label (type, category "
                                                  "or urgency) than the model served now, leaving that label to "
                                                  "the rules alone")


class ClassifierState(BaseModel):
    active: str | None
    shadow: str | None
    versions: list[dict[str, Any]] = Field(description="metadata of each version: task, labels, data, metrics")
    history: list[dict[str, Any]]
    control_generation: int | None = Field(None, description="the control row's generation after a change")


def _state(store: ModelStore, generation: int | None = None) -> dict[str, Any]:
    return {"active": store.active(), "shadow": store.shadow(), "versions": [asdict(m) for m in store.versions()],
            "history": store.history(), "control_generation": generation}


@router.get("", response_model=ClassifierState, dependencies=[Depends(require_role(*READERS))])
def classifier_state() -> dict[str, Any]:
    return _state(ModelStore())


def _change(request: Request, principal: Principal,
            change: Callable[[Any, str, ModelStore], ControlState]) -> dict[str, Any]:
    store = ModelStore()
    try:
        control = change(request.app.state.engine, f"api:{principal.name}", store)
    except ModelStoreError as exc:
        raise HTTPException(404 if "no model version" in str(exc) else 409, detail=str(exc)) from exc
    except rollout.ControlNotWritten as exc:
        raise HTTPException(503, detail=str(exc)) from exc
    return _state(store, control.generation)


_CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such version"}, 409: {"description": "nothing to roll back, or a bad name"},
    503: {"description": "active.json changed, but the control row could not be written"}}


@router.post("/promote", response_model=ClassifierState, responses=_CHANGE_ERRORS)
def promote(request: Request, body: PromoteChoice, principal: Changer) -> dict[str, Any]:
    """Make `version` the active model; running pipelines switch within seconds. A version that predicts
    another label than the model served now is refused (409) unless `replace_task` is true."""
    version = body.version
    if version is None:
        raise HTTPException(422, detail=[{"loc": ["body", "version"], "msg": "a version to promote",
                                          "type": "missing"}])
    return _change(request, principal, lambda engine, by, store: rollout.promote(
        engine, version, by, store, replace_task=body.replace_task))


@router.post("/rollback", response_model=ClassifierState, responses=_CHANGE_ERRORS)
def rollback(request: Request, principal: Changer) -> dict[str, Any]:
    """Make the version active before the current one active again (none: the shipped model, else rules)."""
    return _change(request, principal, rollout.rollback)


@router.post("/shadow", response_model=ClassifierState, responses=_CHANGE_ERRORS)
def shadow(request: Request, body: VersionChoice, principal: Changer) -> dict[str, Any]:
    """Run `version` beside the active model on live traffic, recording disagreements (null: off)."""
    version = body.version
    return _change(request, principal, lambda engine, by, store: rollout.set_shadow(engine, version, by, store))
