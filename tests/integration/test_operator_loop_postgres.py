"""The operator loop on PostgreSQL: migration 0004 up and down, the control row polled by a
processor, shadow disagreements and corrections."""

import pytest

pytest.importorskip("spacy")

import logging
import shutil

from sqlalchemy import inspect, select

from classifiers.control import read_control, write_control
from classifiers.corrections import corrections_for_task, record_correction
from classifiers.hot_reload import ClassifierReloader
from classifiers.models import ModelStore
from classifiers.shadow import list_disagreements
from pipeline.config import Settings, StoreConfig
from pipeline.processor import Processor
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import messages
from tests.classifiers.operator_fixtures import build_store

pytestmark = pytest.mark.postgres
TABLES = {"classifier_control", "shadow_disagreements", "label_corrections"}


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    build_store(root)
    return root


def test_migration_0004_goes_up_and_down(pg_url):
    upgrade(pg_url, "0004")
    engine = make_engine(pg_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        upgrade_down(pg_url)
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(pg_url)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def upgrade_down(url):
    from alembic import command

    from pipeline.store.database import alembic_config

    command.downgrade(alembic_config(url), "0003")


def test_control_shadow_and_corrections_on_postgres(pg_url, model_root, tmp_path, record, language_detector,
                                                    caplog):
    caplog.set_level(logging.INFO, "classifiers.reload")
    upgrade(pg_url)
    engine = make_engine(pg_url)
    shutil.copytree(model_root, tmp_path / "models")
    reloader = ClassifierReloader(pg_url, ModelStore(tmp_path / "models"), shipped_root=tmp_path / "none",
                                  interval_s=0)
    processor = Processor(Settings(store=StoreConfig(url=pg_url)), engine, language_detector, reloader=reloader)
    try:
        assert write_control(engine, "v1", None, "test").generation == 1
        assert write_control(engine, "v1", "v2", "test").generation == 2
        with engine.connect() as conn:
            assert read_control(conn).shadow_version == "v2"
        processor.process([record("味道送餐", "ann")])  # no rule cue: the models decide, and differ
        assert "now using version v1" in caplog.text and "shadow version now v2" in caplog.text
        found = list_disagreements(engine)
        with engine.connect() as conn:
            message_id = conn.execute(select(messages.c.id)).scalar_one()
        assert len(found) == 1 and found[0]["message_id"] == message_id and "type" in found[0]["fields"]
        record_correction(engine, message_id, "complaint", "product", "normal", by="olga")
        assert corrections_for_task(engine, "category") == [("味道送餐", "zh", "product")]
    finally:
        processor.close()
        engine.dispose()
