import json

import pytest

from classifiers.models import ModelMetadata, ModelStore, ModelStoreError, data_hash, models_dir


class FakeModel:
    def save(self, path):
        path.mkdir(parents=True)
        (path / "weights").write_text("w")


def meta(name):
    return ModelMetadata(version=name, task="type", labels=["complaint", "praise"],
                         data_hash=data_hash([("a", "complaint")]), n_examples=1, seed=0,
                         created_at=f"2026-01-0{name[-1]}")


@pytest.fixture
def store(tmp_path):
    s = ModelStore(tmp_path)
    for name in ("v1", "v2", "v3"):
        s.save(name, FakeModel(), meta(name))
    return s


def test_versions_keep_their_metadata(store, tmp_path):
    assert [m.version for m in store.versions()] == ["v1", "v2", "v3"]
    saved = json.loads((tmp_path / "versions" / "v2" / "metadata.json").read_text())
    assert saved["labels"] == ["complaint", "praise"] and saved["data_hash"].startswith("sha256:")
    assert store.active() is None


def test_promote_and_rollback_walk_the_history(store):
    store.promote("v1")
    store.promote("v3")
    assert store.active() == "v3"
    assert store.rollback() == "v1"
    assert store.active() == "v1"
    assert store.rollback() is None
    with pytest.raises(ModelStoreError, match="nothing to roll back"):
        store.rollback()
    assert [h["action"] for h in store.history()] == ["promote", "promote", "rollback", "rollback"]


def test_unknown_or_bad_names_are_errors(store):
    with pytest.raises(ModelStoreError, match="no model version 'v9'"):
        store.promote("v9")
    with pytest.raises(ModelStoreError, match="bad version name"):
        store.promote("../etc")


def test_no_version_is_overwritten_active_or_not(store):
    before = store.metadata("v1")
    store.promote("v2")
    for name in ("v1", "v2"):
        with pytest.raises(ModelStoreError, match=f"version '{name}' already exists"):
            store.save(name, FakeModel(), meta(name))
    assert store.metadata("v1") == before


def test_promoting_the_active_version_again_records_nothing_and_it_cannot_be_its_own_shadow(store):
    assert store.promote("v1") is True
    assert store.promote("v1") is False
    with pytest.raises(ModelStoreError, match="'v1' is the active one"):
        store.set_shadow("v1")
    assert [h["action"] for h in store.history()] == ["promote"]
    assert store.rollback() is None  # not back onto v1


def test_promoting_or_rolling_back_to_the_shadow_ends_shadow_mode(store):
    store.promote("v1")
    store.set_shadow("v2")
    store.promote("v2")
    assert (store.active(), store.shadow()) == ("v2", None)
    store.set_shadow("v1")
    store.rollback()
    assert (store.active(), store.shadow()) == ("v1", None)


def test_a_version_for_another_task_is_refused_unless_asked_for(store):
    from dataclasses import replace

    store.save("u1", FakeModel(), replace(meta("u1"), task="urgency", labels=["low", "high"]))
    store.promote("v1", serving_task="type")
    with pytest.raises(ModelStoreError, match="'u1' predicts urgency, the model the pipeline serves predicts type"):
        store.promote("u1", serving_task="type")
    assert store.active() == "v1"
    store.promote("u1", serving_task=None)  # --replace-task
    assert store.active() == "u1"


def test_data_hash_depends_on_texts_and_labels():
    assert data_hash([("a", "x")]) != data_hash([("a", "y")])
    assert data_hash([("a", "x")]) == data_hash([("a", "x")])


def test_models_dir_is_configurable(monkeypatch, tmp_path):
    monkeypatch.setenv("INTAKE_MODELS_DIR", str(tmp_path))
    assert models_dir() == tmp_path
    monkeypatch.delenv("INTAKE_MODELS_DIR")
    assert str(models_dir()) == "var/models"


def test_shadow_is_recorded_beside_the_active_version(store):
    store.promote("v1")
    store.set_shadow("v2")
    assert store.shadow() == "v2" and store.active() == "v1"
    assert store.history()[-1] == {"action": "shadow", "version": "v2", "previous": None,
                                   "at": store.history()[-1]["at"]}
    store.set_shadow(None)
    assert store.shadow() is None
    with pytest.raises(ModelStoreError, match="no model version 'v9'"):
        store.set_shadow("v9")
