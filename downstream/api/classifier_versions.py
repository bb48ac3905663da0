"""/v1/classifiers: model versions with their hold-out metrics; promote, roll back, shadow (admin).

The same operations as `intake classifiers promote|rollback|shadow`: the model store's active.json, then
the store's control row, which running pipelines poll (classifiers/control.py).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from classifiers.control import write_control
from classifiers.models import ModelStore, ModelStoreError
from downstream.api.auth import ADMIN, READERS, require_role
from downstream.api.tokens import Principal

router = APIRouter(prefix="/v1/classifiers", tags=["classifiers"])


class VersionChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str | None = Field(description="a version name; for shadow, null switches shadow mode off")


class ClassifierState(BaseModel):
    active: str | None
    shadow: str | None
    versions: list[dict[str, Any]] = Field(description="metadata of each version: task, labels, data, metrics")
    history: list[dict[str, Any]]
    control_generation: int | None = Field(None, description="the control row's generation after a change")


def _state(store: ModelStore, generation: int | None = None) -> dict[str, Any]:
    return {"active": store.active(), "shadow": store.shadow(), "versions": [asdict(m) for m in store.versions()],
            "history": store.history(), "control_generation": generation}


def _error(exc: ModelStoreError) -> HTTPException:
    return HTTPException(404 if "no model version" in str(exc) else 409, detail=str(exc))


@router.get("", response_model=ClassifierState, dependencies=[Depends(require_role(*READERS))])
def classifier_state() -> dict[str, Any]:
    return _state(ModelStore())


def _publish(request: Request, store: ModelStore, principal: Principal) -> dict[str, Any]:
    control = write_control(request.app.state.engine, store.active(), store.shadow(), f"api:{principal.name}")
    return _state(store, control.generation)


@router.post("/promote", response_model=ClassifierState)
def promote(request: Request, body: VersionChoice,
            principal: Annotated[Principal, Depends(require_role(ADMIN))]) -> dict[str, Any]:
    """Make `version` the active model; running pipelines switch within seconds."""
    if body.version is None:
        raise HTTPException(422, detail=[{"loc": ["body", "version"], "msg": "a version to promote",
                                          "type": "missing"}])
    store = ModelStore()
    try:
        store.promote(body.version)
    except ModelStoreError as exc:
        raise _error(exc) from exc
    return _publish(request, store, principal)


@router.post("/rollback", response_model=ClassifierState)
def rollback(request: Request, principal: Annotated[Principal, Depends(require_role(ADMIN))]) -> dict[str, Any]:
    """Make the version active before the current one active again (none: the shipped model, else rules)."""
    store = ModelStore()
    try:
        store.rollback()
    except ModelStoreError as exc:
        raise _error(exc) from exc
    return _publish(request, store, principal)


@router.post("/shadow", response_model=ClassifierState)
def shadow(request: Request, body: VersionChoice,
           principal: Annotated[Principal, Depends(require_role(ADMIN))]) -> dict[str, Any]:
    """Run `version` beside the active model on live traffic, recording disagreements (null: off)."""
    store = ModelStore()
    try:
        store.set_shadow(body.version)
    except ModelStoreError as exc:
        raise _error(exc) from exc
    return _publish(request, store, principal)
