"""The operator loop on SQLite: the model in the classify stage, hot reload across processes,
shadow disagreements, corrections and training with them."""

import pytest

pytest.importorskip("spacy")

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from classifiers.commands import classifiers_group
from classifiers.control import read_control, write_control
from classifiers.corrections import CorrectionError, corrections_for_task, record_correction
from classifiers.hot_reload import ClassifierReloader
from classifiers.rules import RULES_DIR
from classifiers.shadow import list_disagreements
from pipeline.processor import Processor
from pipeline.store.schema import messages
from tests.classifiers.operator_fixtures import build_store

ROOT = Path(__file__).resolve().parents[2]
# no rule cue (rules say inquiry, 0.2): the model decides the type, and v2 says the opposite of v1
NO_CUE = "味道送餐"


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    build_store(root)
    return root


@pytest.fixture
def models(model_root, tmp_path):
    root = tmp_path / "models"
    shutil.copytree(model_root, root)
    from classifiers.models import ModelStore

    return ModelStore(root)


@pytest.fixture
def cli_env(models, sqlite_url, tmp_path, monkeypatch):
    (tmp_path / "none.yaml").write_text("{}\n")
    env = {"INTAKE_MODELS_DIR": str(models.root), "INTAKE_STORE__URL": sqlite_url,
           "INTAKE_CONFIG": str(tmp_path / "none.yaml")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("classifiers.active_model.SHIPPED_DIR", tmp_path / "no-shipped")
    return env


def make_processor(settings, engine, detector, models, tmp_path, rules_dir=RULES_DIR):
    reloader = ClassifierReloader(settings.store.url, models, rules_dir, tmp_path / "no-shipped", interval_s=0)
    return Processor(settings, engine, detector, reloader=reloader)


def stored_reasons(engine):
    with engine.connect() as conn:
        return [r["labels"] for (r,) in conn.execute(select(messages.c.reasons).order_by(messages.c.id))]


def cli(*args):
    return CliRunner().invoke(classifiers_group, list(args))


def test_the_active_model_classifies_in_the_pipeline_and_follows_the_control_row(
        settings, engine, language_detector, models, record, tmp_path, caplog):
    caplog.set_level(logging.INFO, "classifiers.reload")
    processor = make_processor(settings, engine, language_detector, models, tmp_path)
    processor.process([record(NO_CUE, "ann")])
    assert not any("model" in r for r in stored_reasons(engine)[0])  # nothing promoted, nothing shipped

    write_control(engine, "v1", None, "test")
    processor.process([record(NO_CUE, "bob")])
    assert "classifier: now using version v1 (was none (rules only))" in caplog.text
    said_v1 = [r for r in stored_reasons(engine)[1] if ": model v1 p=" in r]
    assert said_v1 and said_v1[0].split(":")[0] in ("type praise", "type complaint")

    write_control(engine, "v2", None, "test")
    processor.process([record(NO_CUE, "cat")])
    assert "classifier: now using version v2 (was v1)" in caplog.text
    said_v2 = [r for r in stored_reasons(engine)[2] if ": model v2 p=" in r]
    assert said_v2 and said_v2[0].split(":")[0] != said_v1[0].split(":")[0]
    processor.close()


def test_promote_in_another_process_reaches_a_running_processor(
        settings, engine, language_detector, models, record, tmp_path, cli_env, caplog):
    caplog.set_level(logging.INFO, "classifiers.reload")
    processor = make_processor(settings, engine, language_detector, models, tmp_path)
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "classifiers", "promote", "v1"], cwd=tmp_path,
                          env=os.environ | cli_env | {"PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads((models.root / "active.json").read_text())["active"] == "v1"  # the file record too
    processor.process([record(NO_CUE, "ann")])
    assert "now using version v1" in caplog.text
    assert processor.reloader.live.active_version == "v1"
    assert cli("rollback").exit_code == 0
    processor.process([record(NO_CUE, "bob")])
    assert "now using version none (rules only) (was v1)" in caplog.text
    with engine.connect() as conn:
        assert read_control(conn).generation == 2
    processor.close()


def test_a_version_that_cannot_load_keeps_the_current_one(settings, engine, language_detector, models, record,
                                                          tmp_path, caplog):
    processor = make_processor(settings, engine, language_detector, models, tmp_path)
    write_control(engine, "v1", None, "test")
    processor.process([record(NO_CUE, "ann")])
    write_control(engine, "gone", None, "test")
    processor.process([record(NO_CUE, "bob")])
    assert "cannot load active version gone" in caplog.text
    assert processor.reloader.live.active_version == "v1"
    assert len(stored_reasons(engine)) == 2
    processor.close()


def test_rules_changes_are_picked_up_and_bad_rules_keep_the_old_ones(
        settings, engine, language_detector, models, record, tmp_path, caplog):
    caplog.set_level(logging.INFO, "classifiers.reload")
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules_dir)
    processor = make_processor(settings, engine, language_detector, models, tmp_path, rules_dir)
    reloader = processor.reloader
    before = reloader.live.snapshot.rules
    en = rules_dir / "en.yaml"
    en.write_text(en.read_text() + "\n")
    assert reloader.refresh()
    assert "classifier: rules reloaded" in caplog.text and reloader.live.snapshot.rules is not before
    good, good_source = reloader.live.snapshot.rules, en.read_text()
    en.write_text("lang: en\ntypes: [not a mapping\n")
    reloader.refresh()
    assert "rules in" in caplog.text and "not reloaded" in caplog.text
    assert reloader.live.snapshot.rules is good
    en.write_text(good_source)
    (rules_dir / "el.yaml").unlink()
    reloader.refresh()
    assert "no rules file for el any more" in caplog.text and reloader.live.snapshot.rules is good
    processor.process([record("My order arrived broken", "ann")])  # still classifies
    assert len(stored_reasons(engine)) == 1
    processor.close()


def test_shadow_disagreements_are_recorded_and_listed(settings, engine, language_detector, models, record,
                                                      tmp_path, cli_env):
    processor = make_processor(settings, engine, language_detector, models, tmp_path)
    write_control(engine, "v1", "v2", "test")
    batch = [record(NO_CUE, "ann"), record(NO_CUE + " ok", "bob")]
    processor.process(batch)
    processor.process(batch)  # redelivered: no second row
    found = list_disagreements(engine)
    assert len(found) == 2
    with engine.connect() as conn:
        ids = set(conn.execute(select(messages.c.id)).scalars())
    assert {d["message_id"] for d in found} == ids
    first = found[0]
    assert first["active_version"] == "v1" and first["candidate_version"] == "v2" and "type" in first["fields"]
    assert {first["active"]["type"], first["candidate"]["type"]} == {"praise", "complaint"}
    assert 0 < first["active_confidence"] <= 1 and 0 < first["candidate_confidence"] <= 1
    result = cli("disagreements", "--limit", "1", "--json")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["candidate"]["type"] in ("praise", "complaint")
    assert f"type: {first['active']['type']} -> {first['candidate']['type']}" in cli("disagreements").output
    processor.close()


def test_shadow_command_sets_and_clears_the_control_row(engine, cli_env):
    assert cli("shadow", "v2").exit_code == 0
    with engine.connect() as conn:
        assert read_control(conn).shadow_version == "v2"
    assert cli("shadow", "--off").exit_code == 0
    with engine.connect() as conn:
        assert read_control(conn).shadow_version is None
    assert "no model version 'v9'" in cli("shadow", "v9").output
    assert cli("shadow").exit_code != 0


def test_corrections_are_stored_with_who_and_when(processor, engine, record, cli_env):
    processor.process([record("My order arrived broken, refund please", "ann")])
    with engine.connect() as conn:
        message_id = conn.execute(select(messages.c.id)).scalar_one()
    result = cli("correct", "--message-id", str(message_id), "--type", "complaint", "--category", "delivery",
                 "--urgency", "high", "--by", "olga")
    assert result.exit_code == 0, result.output
    stored = json.loads(result.output)
    assert stored["corrected_by"] == "olga" and stored["category"] == "delivery" and stored["corrected_at"]
    assert stored["previous"]["type"] in ("complaint", "inquiry", "praise", "suggestion", "spam")
    assert corrections_for_task(engine, "category") == [("My order arrived broken, refund please", "en", "delivery")]
    record_correction(engine, message_id, "praise", by="olga")  # a later correction wins
    assert corrections_for_task(engine, "type")[0][2] == "praise"
    assert corrections_for_task(engine, "urgency")[0][2] == "high"  # the later one gave none
    for bad, why in (({"type_": "angry"}, "type 'angry'"), ({"type_": "praise", "category": "billing"},
                                                            "only complaints"),
                     ({"type_": "complaint", "urgency": "asap"}, "urgency 'asap'"), ({"type_": "spam", "by": " "},
                                                                                     "by")):
        with pytest.raises(CorrectionError, match=why):
            record_correction(engine, message_id, **({"by": "olga"} | bad))
    with pytest.raises(CorrectionError, match="no message with id 999"):
        record_correction(engine, 999, "spam", by="olga")
    assert "no message with id 999" in cli("correct", "--message-id", "999", "--type", "spam", "--by", "x").output


def test_train_with_corrections_lets_them_win_over_file_labels(processor, engine, record, cli_env, tmp_path):
    text = "hi, sản phẩm tuyệt vời, giao hàng nhanh."  # in the file as praise
    processor.process([record(text, "ann"), record("brand new sentence the file lacks", "bob")])
    with engine.connect() as conn:
        ids = list(conn.execute(select(messages.c.id).order_by(messages.c.id)).scalars())
    record_correction(engine, ids[0], "complaint", by="olga")
    record_correction(engine, ids[1], "complaint", by="olga")
    data = tmp_path / "train.jsonl"
    from tests.classifiers.textcat_data import rows

    data.write_text("".join(json.dumps({"text": t, "proxy": {"type": y}}, ensure_ascii=False) + "\n"
                            for t, y in rows()))
    result = cli("train", "--data", str(data), "--version", "c1", "--with-corrections")
    assert result.exit_code == 0, result.output
    assert "2 corrections for type (1 replace file labels)" in result.output
    meta = json.loads((Path(os.environ["INTAKE_MODELS_DIR"]) / "versions" / "c1" / "metadata.json").read_text())
    assert meta["sources"] == ["train.jsonl", "corrections(2)"] and meta["n_examples"] == len(rows()) + 1


def test_a_correction_matches_the_file_row_whatever_its_compatibility_forms():
    from classifiers.corrections import same_text
    from pipeline.stages.normalise import normalise_text

    in_file = "送餐太慢了！菜都凉了，　差评？"
    assert same_text(normalise_text(in_file)) == same_text(in_file)  # the pipeline stores NFKC text
    assert same_text("ＲＥＦＵＮＤ  me") == same_text("refund me")
    assert same_text("giao hàng\u200b chậm\x00") == same_text(normalise_text("giao hàng\u200b chậm\x00"))


def test_migration_0004_goes_down_and_up_on_sqlite(sqlite_url, engine):
    from alembic import command
    from sqlalchemy import inspect

    from pipeline.store.database import alembic_config, upgrade

    tables = {"classifier_control", "shadow_disagreements", "label_corrections"}
    assert set(inspect(engine).get_table_names()) >= tables
    command.downgrade(alembic_config(sqlite_url), "0003")
    assert not tables & set(inspect(engine).get_table_names())
    upgrade(sqlite_url)
    assert set(inspect(engine).get_table_names()) >= tables


def test_stage_worker_process_classifies_with_the_model_and_reports_disagreements(
        settings, engine, models, record, monkeypatch):
    monkeypatch.setenv("INTAKE_MODELS_DIR", str(models.root))  # the spawned worker reads it
    write_control(engine, "v1", "v2", "test")
    processor = Processor(settings, engine, stage_workers=1)
    try:
        result = processor.process([record(NO_CUE, "ann")])
    finally:
        processor.close()
    assert result.stored == 1
    assert any(": model v1 p=" in r for r in stored_reasons(engine)[0])
    found = list_disagreements(engine)
    assert len(found) == 1 and found[0]["message_id"] is not None


def test_the_batch_path_answers_as_combine_does(models):
    from classifiers.active_model import load_version
    from classifiers.combine import CombinedClassifier, Message
    from classifiers.live import LiveClassifier, Request, Snapshot
    from classifiers.rules import RuleClassifier

    rules, loaded = RuleClassifier(), load_version(models, "v1")
    texts = [(NO_CUE, "zh"), ("The charger caught fire and burned my hand", "en"), ("", "en"),
             ("sản phẩm tuyệt vời, giao hàng nhanh", "vi"), ("товар сервис", "ru"), ("BUY NOW cheap www.x.com", "en")]
    live = LiveClassifier(Snapshot(rules, "", loaded, None))
    answers, _ = live.classify([Request(t, lang) for t, lang in texts])
    expected = CombinedClassifier(rules, loaded.model, "v1", "type").classify([Message(t, lang) for t, lang in texts])
    assert answers == expected
    assert answers[0]["type_source"] == "model:v1"
