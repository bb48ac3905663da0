"""`intake classify` and `intake classifiers` (evaluate, train, promote, rollback, shadow, disagreements,
correct, list, bench)."""

from __future__ import annotations

import getpass
import json
import os
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from classifiers.evaluate import Scored, report, save_confusion, task_of
from classifiers.labels import CATEGORIES, TYPES, URGENCIES
from classifiers.models import ModelMetadata, ModelStore, ModelStoreError, data_hash, now
from pipeline.cli_options import config_option, store_engine

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from classifiers.active_model import LoadedModel
    from classifiers.control import ControlState

HOLDOUT = 0.1
MIN_PER_CLASS = 10  # fewer examples of a label than this: train warns
TASK_LABELS: dict[str, tuple[str, ...]] = {"type": TYPES, "category": CATEGORIES, "urgency": URGENCIES}
WORST_MISTAKES, MISTAKE_TEXT_CHARS = 20, 200  # kept in a version's metrics, shown on the console


class DataError(click.ClickException):
    """A data file is unusable; the message names file, line and field."""


def _field(row: dict[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def field_task(label_field: str) -> str | None:
    """The task a label field names by its last part (`proxy.type`: type), or None (`gold`)."""
    last = label_field.rsplit(".", 1)[-1]
    return last if last in TASK_LABELS else None


def read_labelled(files: tuple[str, ...], text_field: str, label_field: str,
                  missing_label_ok: bool, task: str | None = None) -> Iterator[tuple[str, str, str]]:
    """(text, lang, label) per row with a label; rows with a null label are skipped. With `task`
    known, a label outside that task's labels is an error naming its file and line."""
    known = TASK_LABELS[task] if task else None
    for name in files:
        with open(name, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{name}:{n}: not JSON ({exc.msg})") from None
                has_text, text = _field(row, text_field)
                has_label, label = _field(row, label_field)
                if not has_text or not isinstance(text, str):
                    raise DataError(f"{name}:{n}: field {text_field!r} is missing or not a string")
                if not has_label and not missing_label_ok:
                    raise DataError(f"{name}:{n}: field {label_field!r} is missing")
                if label is None:
                    continue
                if not isinstance(label, str):
                    raise DataError(f"{name}:{n}: field {label_field!r} is {label!r}, not a label string")
                if known is not None and label not in known:
                    # the closing words are what _task says when the task had to be inferred
                    raise DataError(f"{name}:{n}: {label!r} in {label_field!r} is not a {task} label "
                                    f"({', '.join(known)}); the labels are not all type, category or urgency labels")
                yield text, str(row.get("lang") or "und"), label


def _task(labels: set[str], source: str) -> str:
    try:
        return task_of(labels)
    except ValueError as exc:
        raise DataError(f"{source}: {exc}") from None


def _load_model(store: ModelStore, version: str) -> tuple[Any, ModelMetadata]:
    from classifiers.textcat import TextCatClassifier

    try:
        return TextCatClassifier.load(store.model_path(version)), store.metadata(version)
    except ModelStoreError as exc:
        raise click.ClickException(str(exc)) from None


def default_model(store: ModelStore) -> LoadedModel | None:
    """What the pipeline uses: the promoted version, else the shipped model, else None (rules only)."""
    from classifiers.active_model import load_model

    try:
        return load_model(store, store.active())
    except ModelStoreError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # damaged model files: say which version, not a traceback
        raise click.ClickException(f"the active model version {store.active()!r} cannot be loaded "
                                   f"({exc.__class__.__name__}: {exc}); roll back or promote another version") from None


def combined(store: ModelStore) -> Any:
    """Rules + the default model through the pipeline's batch path (classifiers/live.py)."""
    from classifiers.hot_reload import rules_hash
    from classifiers.live import LiveClassifier, Snapshot
    from classifiers.rules import RULES_DIR, RuleClassifier

    return LiveClassifier(Snapshot(RuleClassifier(), rules_hash(RULES_DIR), default_model(store), None))


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def change_versions(change: Callable[[Engine, str], ControlState], config: str | None) -> ControlState:
    """Run a rollout change (classifiers/rollout.py) on the configured store, errors as click errors."""
    from classifiers.rollout import ControlNotWritten

    engine = store_engine(config)
    try:
        state = change(engine, _operator())
    except (ModelStoreError, ControlNotWritten) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    return state


def _published(state: ControlState) -> None:
    click.echo(f"running pipelines pick it up within a few seconds (control generation {state.generation})")


@click.command("classify")
@click.option("--batch-size", default=512, show_default=True)
def classify_command(batch_size: int) -> None:
    """Classify JSON lines ({"text", "lang"?, "channel"?}) from stdin: one JSON answer per line
    (blank lines are skipped; a line that cannot be read gets {"error": ...}). Without "lang" the
    language is detected."""
    from classifiers.combine import Message
    from classifiers.language import LanguageDetector

    clf = combined(ModelStore())
    detector = LanguageDetector()

    def flush(batch: list[Any]) -> None:
        good = [m for m in batch if isinstance(m, Message)]
        answers = iter(clf.classify_messages(good))
        for m in batch:
            out = next(answers) | {"lang": m.lang} if isinstance(m, Message) else m
            click.echo(json.dumps(out, ensure_ascii=False))

    batch: list[Any] = []
    for n, raw in enumerate(sys.stdin.buffer, 1):
        try:
            line = raw.decode("utf-8")
            if not line.strip():
                continue
            batch.append(_message(json.loads(line), detector))
        except UnicodeDecodeError:
            batch.append({"error": f"line {n}: not valid UTF-8"})
        except ValueError as exc:
            batch.append({"error": f"line {n}: {exc}"})
        if len(batch) >= batch_size:
            flush(batch)
            batch = []
    flush(batch)


_LANG_CODE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def _message(row: object, detector: Any) -> Any:
    """One `classify` input line as a Message; ValueError names what is wrong with it."""
    from classifiers.combine import Message

    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    text, lang, channel = row.get("text"), row.get("lang"), row.get("channel")
    if not isinstance(text, str):
        raise ValueError("field 'text' is missing or not a string")
    if lang not in (None, "") and not (isinstance(lang, str) and _LANG_CODE.fullmatch(lang)):
        raise ValueError("field 'lang' must be a language code such as 'vi' or 'zh-Hant'")
    if channel is not None and not isinstance(channel, str):
        raise ValueError("field 'channel' must be a string")
    return Message(text, lang or detector.detect(text).lang, channel)


@click.group("classifiers")
def classifiers_group() -> None:
    """Train, evaluate, promote and roll back the type / category / urgency models."""


@classifiers_group.command("evaluate")
@click.option("--data", "data", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--text-field", default="text", show_default=True)
@click.option("--label-field", default="proxy.type", show_default=True)
@click.option("--model", "version", default=None, help="model version (default: what `classify` answers)")
@click.option("--out", type=click.Path(file_okay=False), default="var/eval", show_default=True,
              help="folder for confusion.html / confusion.png")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def evaluate_command(data: str, text_field: str, label_field: str, version: str | None, out: str,
                     as_json: bool) -> None:
    """Accuracy, macro F1, per class and per language on a labelled JSONL file."""
    from classifiers.combine import Message

    store = ModelStore()
    model, meta = _load_model(store, version) if version else (None, None)
    rows = list(read_labelled((data,), text_field, label_field, missing_label_ok=True,
                              task=field_task(label_field) or (meta.task if meta else None)))
    if not rows:
        raise DataError(f"{data}: no row has a {label_field!r} label")
    task = _task({r[2] for r in rows}, data)
    rows = _with_detected_lang(rows)
    texts = [r[0] for r in rows]
    if model is not None and meta is not None:
        if meta.task != task:
            raise click.ClickException(f"model {version} predicts {meta.task}, the labels are {task} labels")
        preds = [(p.label, p.confidence) for p in model.predict(texts)]
    else:
        answers = combined(store).classify_messages([Message(t, lang) for t, lang, _ in rows])
        preds = [(a[task], a[f"{task}_confidence"] or 0.0) for a in answers]
    rep = report([Scored(t, lang, gold, p, c) for (t, lang, gold), (p, c) in zip(rows, preds, strict=True)])
    if not version:
        loaded = default_model(store)
    rep |= {"task": task, "model": version or (loaded.version if loaded else "rules"),
            "files": [str(p) for p in save_confusion(rep, Path(out))]}
    if as_json:
        click.echo(json.dumps(rep, ensure_ascii=False))
        return
    click.echo(f"{task}: n={rep['n']} accuracy={rep['accuracy']} macro F1={rep['macro_f1']} ({rep['model']})")
    for label, m in rep["per_class"].items():
        click.echo(f"  {label:18} P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f} n={m['support']}")
    for lang, m in rep["per_language"].items():
        click.echo(f"  [{lang}] accuracy={m['accuracy']:.3f} n={m['n']}")
    click.echo("confusion matrix: " + ", ".join(rep["files"]))


def _with_detected_lang(rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Rows without a `lang` get the detected language, as `classify` and the pipeline give them."""
    if all(lang != "und" for _, lang, _ in rows):
        return rows
    from classifiers.language import LanguageDetector

    detector = LanguageDetector()
    return [(text, detector.detect(text).lang if lang == "und" else lang, label) for text, lang, label in rows]


def _fit(texts: list[str], labels: list[str], seed: int, title: str) -> Any:
    from rich.progress import Progress

    from classifiers.textcat import TextCatClassifier, TrainingDataError

    with Progress(transient=True, console=_stderr_console()) as bar:
        job = bar.add_task(title, total=1)
        try:
            return TextCatClassifier.train(texts, labels, seed=seed,
                                           progress=lambda done, total: bar.update(job, completed=done, total=total))
        except TrainingDataError as exc:
            raise click.ClickException(str(exc)) from None


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@classifiers_group.command("train")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--text-field", default="text", show_default=True)
@click.option("--label-field", default="proxy.type", show_default=True)
@click.option("--version", "version", required=True, help="name of the new model version")
@click.option("--with-corrections", is_flag=True, help="add operators' corrections stored in the database")
@click.option("--seed", default=0, show_default=True)
@config_option
def train_command(data: tuple[str, ...], text_field: str, label_field: str, version: str,
                  with_corrections: bool, seed: int, config: str | None) -> None:
    """Train a model version from labelled JSONL; metrics come from a seeded 10% hold-out."""
    from classifiers.textcat import settings_dict  # spaCy loads with it: not for every command

    store = ModelStore()
    try:
        store.refuse_existing(version)  # before the data is read and a model trained
    except ModelStoreError as exc:
        raise click.ClickException(str(exc)) from None
    rows = list(read_labelled(data, text_field, label_field, missing_label_ok=False, task=field_task(label_field)))
    if not rows:
        raise DataError(f"{', '.join(data)}: no row has a {label_field!r} label")
    task = _task({r[2] for r in rows}, ", ".join(data))
    sources = [str(Path(d).name) for d in data]
    if with_corrections:
        rows, n_corrections = _with_corrections(rows, task, config)
        sources.append(f"corrections({n_corrections})")
    texts, labels = [r[0] for r in rows], [r[2] for r in rows]
    _warn_thin_classes(labels)
    metrics: dict[str, Any] = {}
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cut = int(len(rows) * HOLDOUT)
    held, fit = order[:cut], order[cut:]
    if cut >= 5 and len({labels[i] for i in fit}) >= 2:
        trial = _fit([texts[i] for i in fit], [labels[i] for i in fit], seed, "hold-out model")
        preds = trial.predict([texts[i] for i in held])
        rep = report([Scored(texts[i], rows[i][1], labels[i], p.label, p.confidence)
                      for i, p in zip(held, preds, strict=True)], worst=WORST_MISTAKES)
        metrics = {k: rep[k] for k in ("n", "accuracy", "macro_f1", "per_class", "per_language", "confusion")}
        metrics["worst_mistakes"] = [m | {"text": m["text"][:MISTAKE_TEXT_CHARS]} for m in rep["worst_mistakes"]]
        metrics["holdout"] = HOLDOUT
    model = _fit(texts, labels, seed, f"training {version}")
    meta = ModelMetadata(version=version, task=task, labels=list(model.labels),
                         data_hash=data_hash(zip(texts, labels, strict=True)), n_examples=len(rows), seed=seed,
                         created_at=now(), sources=sources, metrics=metrics,
                         params={**settings_dict(), "label_field": label_field})
    try:
        path = store.save(version, model, meta)
    except ModelStoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"model {version}: {task}, {len(rows)} examples, labels {list(model.labels)}, "
               f"hold-out accuracy {metrics.get('accuracy', 'n/a')} -> {path}")


def _warn_missing_labels(version: str, task: str, labels: Sequence[str]) -> None:
    """A model trained on some of a task's labels never answers the others (a complaint / praise model
    calls a question one of the two)."""
    vocab = TASK_LABELS.get(task, ())
    missing = [label for label in vocab if label not in labels]
    if missing:
        click.echo(f"note: {version} knows {len(vocab) - len(missing)} of the {len(vocab)} {task} labels; it never "
                   f"answers {', '.join(missing)} (the rules still can, when they are confident)", err=True)


def _warn_thin_classes(labels: list[str]) -> None:
    """A class with a handful of examples trains a model that seldom predicts it, and a 10% hold-out
    then holds few or none of them: say so rather than let an accuracy of 1.0 speak for it."""
    counts = Counter(labels)
    thin = {label: n for label, n in sorted(counts.items()) if n < MIN_PER_CLASS}
    if thin:
        named = ", ".join(f"{label!r} {n}" for label, n in thin.items())
        click.echo(f"warning: few examples of {named} (of {len(labels)}); the model will seldom predict "
                   f"{'it' if len(thin) == 1 else 'them'} and the hold-out figures say little about "
                   f"{'it' if len(thin) == 1 else 'them'}", err=True)


def _with_corrections(rows: list[tuple[str, str, str]], task: str, config: str | None
                      ) -> tuple[list[tuple[str, str, str]], int]:
    """The file rows plus the stored corrections for `task`; a correction replaces a file row of the same text."""
    from classifiers.corrections import corrections_for_task, same_text

    engine = store_engine(config)
    try:
        corrections = corrections_for_task(engine, task)
    finally:
        engine.dispose()
    fixed = {same_text(text): (text, lang, label) for text, lang, label in corrections}
    merged = [fixed.get(same_text(text), (text, lang, label)) for text, lang, label in rows]
    in_files = {same_text(text) for text, _, _ in rows}
    merged += [row for key, row in fixed.items() if key not in in_files]
    click.echo(f"{len(corrections)} corrections for {task} ({sum(k in in_files for k in fixed)} replace file labels)",
               err=True)
    return merged, len(corrections)


@classifiers_group.command("promote")
@click.argument("version")
@click.option("--replace-task", is_flag=True, help="serve VERSION even though it predicts another label than the "
              "model served now (that label is then left to the rules)")
@config_option
def promote_command(version: str, replace_task: bool, config: str | None) -> None:
    """Make VERSION the active model (running pipelines switch without a restart)."""
    from classifiers import rollout

    store = ModelStore()
    already = store.active() == version
    state = change_versions(lambda engine, by: rollout.promote(engine, version, by, replace_task=replace_task),
                            config)
    meta = store.metadata(version)
    _warn_missing_labels(version, meta.task, meta.labels)
    click.echo(f"active model: {version}" + (" (it already was: nothing recorded)" if already else ""))
    _published(state)


@classifiers_group.command("rollback")
@config_option
def rollback_command(config: str | None) -> None:
    """Make the version that was active before the current one active again."""
    from classifiers import rollout

    state = change_versions(rollout.rollback, config)
    click.echo(f"active model: {state.active_version or 'none (the shipped model, else rules only)'}")
    _published(state)


@classifiers_group.command("shadow")
@click.argument("version", required=False)
@click.option("--off", is_flag=True, help="stop shadow mode")
@config_option
def shadow_command(version: str | None, off: bool, config: str | None) -> None:
    """Run VERSION beside the active model on live traffic and record where they disagree."""
    from classifiers import rollout

    if off == (version is not None):
        raise click.UsageError("give a VERSION, or --off")
    state = change_versions(lambda engine, by: rollout.set_shadow(engine, None if off else version, by), config)
    beside = state.active_version or "the default"
    click.echo("shadow mode off" if off else f"shadow model: {version} (beside {beside})")
    _published(state)


@classifiers_group.command("disagreements")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--version", "candidate", default=None, help="only this shadow version's")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@config_option
def disagreements_command(limit: int, candidate: str | None, as_json: bool, config: str | None) -> None:
    """Messages where the shadow version disagreed with the active one, newest first."""
    from classifiers.shadow import list_disagreements

    engine = store_engine(config)
    try:
        found = list_disagreements(engine, limit, candidate)
    finally:
        engine.dispose()
    for d in found:
        if as_json:
            click.echo(json.dumps(d, ensure_ascii=False))
            continue
        a, c = d["active"], d["candidate"]
        diff = "  ".join(f"{f}: {a[f]} -> {c[f]}" for f in d["fields"])
        click.echo(f"{d['at']}  message {d['message_id']}  {d['active_version'] or 'rules'} -> "
                   f"{d['candidate_version']}  {diff}")


@classifiers_group.command("correct")
@click.option("--message-id", required=True, type=int)
@click.option("--type", "type_", required=True)
@click.option("--category", default=None)
@click.option("--urgency", default=None)
@click.option("--by", "by", required=True, help="who corrected it")
@config_option
def correct_command(message_id: int, type_: str, category: str | None, urgency: str | None, by: str,
                    config: str | None) -> None:
    """Store an operator's labels for a message as training data (`train --with-corrections`)."""
    from classifiers.corrections import CorrectionError, record_correction

    engine = store_engine(config)
    try:
        correction = record_correction(engine, message_id, type_, category, urgency, by)
    except CorrectionError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(json.dumps(correction.as_dict(), ensure_ascii=False))


@classifiers_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_command(as_json: bool) -> None:
    """Model versions with their task, data and hold-out accuracy; * marks the active one, s the shadow."""
    store = ModelStore()
    active = store.active()
    versions = store.versions()
    if as_json:
        click.echo(json.dumps({"active": active, "shadow": store.shadow(), "versions": [m.version for m in versions],
                               "history": store.history()}))
        return
    for m in versions:
        mark = "*" if m.version == active else "s" if m.version == store.shadow() else " "
        click.echo(f"{mark} {m.version:24} {m.task:8} n={m.n_examples:<7} "
                   f"acc={m.metrics.get('accuracy', 'n/a')} {m.created_at} {','.join(m.sources)}")


@classifiers_group.command("bench")
@click.option("--data", "data", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--text-field", default="text", show_default=True)
@click.option("--model", "version", default=None, help="version or shipped/<task> (default: what the pipeline uses)")
@click.option("--limit", default=5000, show_default=True)
@click.option("--batch-size", default=1000, show_default=True, help="messages per call, as the pipeline batches")
@click.option("--repeat", default=5, show_default=True, help="passes over the data; rates are the best and median pass")
@click.option("--json", "as_json", is_flag=True)
def bench_command(data: str, text_field: str, version: str | None, limit: int, batch_size: int, repeat: int,
                  as_json: bool) -> None:
    """Model load time and messages/s on one core: rules alone, the model alone, and rules + model as
    the pipeline's classify stage runs them (in batches). Each pass starts with an empty normalisation
    cache, so every text is new to it as in the pipeline. Rates are the best pass (what the code does
    when the machine lets it) and the median one; CPU rates are messages per CPU second."""
    import statistics
    import time

    from classifiers.active_model import load_model
    from classifiers.hot_reload import rules_hash
    from classifiers.live import LiveClassifier, Request, Snapshot
    from classifiers.normalise import clear_cache
    from classifiers.rules import RULES_DIR, RuleClassifier

    with open(data, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()][:limit]
    texts = [str(_field(r, text_field)[1] or "") for r in rows]
    langs = [str(r.get("lang") or "und") for r in rows]
    store = ModelStore()
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        loaded = load_model(store, version or store.active())  # loads and warms up
    except ModelStoreError as exc:
        raise click.ClickException(str(exc)) from None
    load_s, load_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    if loaded is None:
        raise click.ClickException("no model: none promoted and none shipped (give --model)")
    rules = RuleClassifier()
    live = LiveClassifier(Snapshot(rules, rules_hash(RULES_DIR), loaded, None))
    requests = [Request(t, lang) for t, lang in zip(texts, langs, strict=True)]

    def rate(work: Any) -> tuple[int, int, int]:
        walls, cpus = [], []
        for _ in range(max(1, repeat)):
            clear_cache()
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(0, len(texts), batch_size):
                work(i, i + batch_size)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        n = len(texts)
        return round(n / min(walls)), round(n / statistics.median(walls)), round(n / max(min(cpus), 1e-9))

    rates = {"rules": rate(lambda a, b: [rules.classify(t, g) for t, g in zip(texts[a:b], langs[a:b], strict=True)]),
             "model": rate(lambda a, b: loaded.model.predict(texts[a:b])),
             "classify": rate(lambda a, b: live.classify(requests[a:b]))}
    figures: dict[str, Any] = {"model": loaded.version, "n": len(texts),
                               "mean_chars": round(sum(map(len, texts)) / max(1, len(texts)), 1),
                               "load_s": round(load_s, 3), "load_cpu_s": round(load_cpu_s, 3), "passes": max(1, repeat)}
    for stage, (best, median, cpu) in rates.items():
        figures.update({f"{stage}_msgs_per_s": best, f"{stage}_msgs_per_s_median": median,
                        f"{stage}_msgs_per_cpu_s": cpu})
    figures.update(loadavg_1m=round(os.getloadavg()[0], 2), cores=os.cpu_count())
    click.echo(json.dumps(figures) if as_json else "  ".join(f"{k}={v}" for k, v in figures.items()))
