"""classifiers/rollout.py: the file record first, then the control row; a failed row write is said."""

import pytest
from sqlalchemy import create_engine

from classifiers import rollout
from classifiers.control import read_control
from classifiers.models import ModelStore, ModelStoreError
from tests.classifiers.test_models import FakeModel, meta


@pytest.fixture(autouse=True)
def _fake_models_load(monkeypatch):
    monkeypatch.setattr("classifiers.active_model.load_version", lambda store, version: None)


@pytest.fixture
def store(tmp_path):
    s = ModelStore(tmp_path / "models")
    for name in ("v1", "v2"):
        s.save(name, FakeModel(), meta(name))
    return s


def test_each_change_writes_active_json_then_the_control_row(store, engine):
    assert rollout.promote(engine, "v1", "olga", store).generation == 1
    rollout.promote(engine, "v2", "olga", store)
    shadowed = rollout.set_shadow(engine, "v1", "olga", store)
    assert (shadowed.active_version, shadowed.shadow_version, shadowed.generation) == ("v2", "v1", 3)
    back = rollout.rollback(engine, "olga", store)
    assert back.active_version == "v1" and store.active() == "v1"
    with engine.connect() as conn:
        assert read_control(conn) == back


def test_a_refused_change_writes_nothing(store, engine):
    with pytest.raises(ModelStoreError, match="no model version 'v9'"):
        rollout.promote(engine, "v9", "olga", store)
    with pytest.raises(ModelStoreError, match="nothing to roll back"):
        rollout.rollback(engine, "olga", store)
    with engine.connect() as conn:
        assert read_control(conn) is None


def test_an_unwritable_control_row_is_said_after_the_file_changed(store):
    unmigrated = create_engine("sqlite://")  # no classifier_control table
    with pytest.raises(rollout.ControlNotWritten, match=r"active\.json updated, but running pipelines were not told"):
        rollout.promote(unmigrated, "v1", "olga", store)
    assert store.active() == "v1"


def test_a_version_that_cannot_be_loaded_is_not_promoted(store, engine, monkeypatch):
    def damaged(store, version):
        raise ValueError("Expected object or value")

    monkeypatch.setattr("classifiers.active_model.load_version", damaged)
    with pytest.raises(ModelStoreError, match=r"version 'v1' cannot be loaded .*Expected object or value"):
        rollout.promote(engine, "v1", "olga", store)
    assert store.active() is None and store.history() == []
    with engine.connect() as conn:
        assert read_control(conn) is None
