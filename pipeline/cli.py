"""The `intake` command line. Its commands and output formats are a contract scripts rely on."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from classifiers.commands import classifiers_group, classify_command
from downstream.api.commands import api_group
from downstream.webhooks.commands import webhooks_group
from pipeline.cli_options import cli_settings, config_option
from pipeline.config import Settings


def _setup_logging(settings: Settings) -> None:
    from pipeline.logs import configure

    configure(settings.logging)


@click.group()
def main() -> None:
    """Omnintake: customer messages from every channel into classified tickets."""


def _until_signal(config: str | None, job: Callable[[Settings, asyncio.Event], Awaitable[object]]) -> None:
    """Load the settings, then run `job` until SIGTERM or SIGINT sets its stop event."""
    from pipeline.service import install_signal_handlers

    settings = cli_settings(config)
    _setup_logging(settings)

    async def _main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await job(settings, stop)

    asyncio.run(_main())


@main.command()
@config_option
def run(config: str | None) -> None:
    """Run connectors, pipeline and relay until SIGTERM."""
    from pipeline.service import run_service

    _until_signal(config, run_service)


@main.command()
@config_option
def relay(config: str | None) -> None:
    """Relay the ticket-event outbox alone (exactly once into Kafka; a file embedded), until SIGTERM."""
    from pipeline.relay import run_relay

    _until_signal(config, run_relay)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="one JSON object with counts and tickets")
@click.option("--samples", type=click.Path(file_okay=False, exists=True), default=None)
def demo(as_json: bool, samples: str | None) -> None:
    """Run the bundled multilingual sample set through the whole pipeline (embedded)."""
    from pipeline.demo import print_table, run_demo

    logging.basicConfig(level=logging.WARNING)
    report = asyncio.run(run_demo(Path(samples) if samples else None))
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, default=str))
    else:
        print_table(report)


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@config_option
@click.option("--revision", default="head")
def db_upgrade(config: str | None, revision: str) -> None:
    """Apply migrations to the configured store."""
    from pipeline.store.database import upgrade

    settings = cli_settings(config)
    upgrade(settings.store.url, revision)
    click.echo(f"database at {revision}")


@main.group()
def dlq() -> None:
    """Dead letters: list and reprocess."""


@dlq.command("list")
@config_option
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def dlq_list(config: str | None, limit: int, as_json: bool) -> None:
    from pipeline.dlq_commands import list_dead_letters

    letters = list_dead_letters(cli_settings(config), limit)
    if as_json:
        for d in letters:
            click.echo(json.dumps({"id": d.id, "stage": d.stage, "error": d.error, "error_class": d.error_class,
                                   "attempts": d.attempts, "source": d.source, "created_at": d.created_at,
                                   "reprocessed": d.reprocessed}, default=str, ensure_ascii=False))
        return
    if not letters:
        click.echo("no dead letters")
    for d in letters:
        mark = " (reprocessed)" if d.reprocessed else ""
        click.echo(f"{d.id:>10}  {d.stage:<9} attempts={d.attempts}  {d.error_class}: {d.error[:100]}{mark}")


@dlq.command("reprocess")
@click.argument("ids", nargs=-1, required=True)
@config_option
def dlq_reprocess(ids: tuple[str, ...], config: str | None) -> None:
    """Send chosen dead letters through the pipeline again."""
    from pipeline.dlq_commands import reprocess

    outcome = reprocess(cli_settings(config), list(ids))
    click.echo(json.dumps(outcome))


@main.command()
@config_option
@click.option("--messages", default=20000, show_default=True)
@click.option("--latency-rate", type=float, default=None,
              help="msgs/s for the latency phase (default: half the throughput)")
@click.option("--json", "as_json", is_flag=True)
def bench(config: str | None, messages: int, latency_rate: float | None, as_json: bool) -> None:
    """Benchmark the pipeline on Kafka + the configured store, beside a raw aiokafka loop."""
    from pipeline.bench import run_bench

    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run_bench(cli_settings(config), messages, latency_rate))
    click.echo(json.dumps(result, indent=None if as_json else 2))


@main.group()
def lang() -> None:
    """Language detection."""


@lang.command("detect")
@click.argument("texts", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def lang_detect(texts: tuple[str, ...], as_json: bool) -> None:
    """Detect the language of each argument, or of each line of stdin (in one batch)."""
    from classifiers.language import LanguageDetector

    detector = LanguageDetector()
    lines = list(texts) if texts else [line.rstrip("\n") for line in sys.stdin]
    for text, result in zip(lines, detector.detect_batch(lines), strict=True):
        click.echo(json.dumps(result.as_dict()) if as_json else f"{result.lang}\t{result.confidence:.3f}\t{text}")


@lang.command("bench")
@click.option("--shared", type=click.Path(file_okay=False), default="../shared", show_default=True,
              help="folder with seeds/ and data/labeled/ (skipped when absent)")
@click.option("--only", multiple=True, help="detector to run (repeatable); default: every one installed")
@click.option("--json", "as_json", is_flag=True, help="the figures as one JSON object after the table")
def lang_bench(shared: str, only: tuple[str, ...], as_json: bool) -> None:
    """Accuracy on sentences, word pairs and single words, texts/s on one core, RSS and load time per detector."""
    from classifiers.language_bench import run_bench

    report = run_bench(Path(shared), only, echo=click.echo)
    if as_json:
        click.echo(json.dumps(report["detectors"]))


@main.group()
def email() -> None:
    """Email parsing."""


@email.command("parse")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def email_parse(files: tuple[str, ...], as_json: bool) -> None:
    """Parse .eml files as the email connector does; one JSON line per file (exit 0 even if some fail)."""
    from connectors.email_mime import parse_email

    for name in files:
        out: dict[str, object] = {"file": name, "ok": False, "error": None}
        try:
            env = parse_email(Path(name).read_bytes(), "cli", Path(name).resolve().as_uri())
            text = f"{env.subject or ''}\n{env.text}"
            out |= {"ok": True, "from": env.sender.id, "subject": env.subject, "message_id": env.message_id,
                    "charset": env.metadata.get("charset"), "text": env.text, "new_text": env.customer_text,
                    "is_auto_reply": "auto_reply" in env.metadata, "auto_reply": env.metadata.get("auto_reply"),
                    "replacement_chars": text.count("\ufffd"), "attachments": len(env.attachments),
                    "defects": env.metadata.get("defects"), "mojibake": env.metadata.get("mojibake")}
        except Exception as exc:
            out["error"] = f"{exc.__class__.__name__}: {exc}"
        click.echo(json.dumps(out, ensure_ascii=False) if as_json else f"{out['ok']}\t{name}")


@main.group()
def transcript() -> None:
    """Call-transcript parsing."""


@transcript.command("parse")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def transcript_parse(files: tuple[str, ...], as_json: bool) -> None:
    """Parse transcript files as the phone connector does; one JSON line per file."""
    from dataclasses import asdict

    from connectors.transcripts import read_transcript, to_envelope

    for name in files:
        try:
            parsed = read_transcript(Path(name))
            env = to_envelope(parsed, Path(name).resolve().as_uri(), Path(name).stem)
            out = {"file": name, "ok": True, "error": None, "format": parsed.format, "call_id": env.message_id,
                   "caller": env.sender.id, "roles_from": parsed.role_source, "customer_text": env.customer_text,
                   "segments": [asdict(s) for s in parsed.segments]}
        except Exception as exc:
            out = {"file": name, "ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
        click.echo(json.dumps(out, ensure_ascii=False) if as_json else f"{out['ok']}\t{name}\t{out.get('error') or ''}")


@main.group()
def schema() -> None:
    """Published JSON Schemas."""


@schema.command("export")
@click.option("--out", type=click.Path(file_okay=False), default="schemas", show_default=True)
def schema_export(out: str) -> None:
    """Write the envelope and ticket-event JSON Schemas."""
    from pipeline.schemas import write_schemas

    for path in write_schemas(Path(out)):
        click.echo(str(path))


@main.group()
def dedup() -> None:
    """Deduplication: the test set's evaluation and the lookup benchmark."""


@dedup.command("evaluate")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default="../shared/data", show_default=True,
              help="real text the pairs are generated from (skipped when absent)")
@click.option("--seed", default=4, show_default=True)
@click.option("--per-source", default=150, show_default=True)
@click.option("--misses", is_flag=True, help="print the pairs decided wrongly")
def dedup_evaluate(data_dir: str, seed: int, per_source: int, misses: bool) -> None:
    """Precision and recall on the dedup test set, per kind of pair."""
    from pipeline.dedup.evaluate import evaluate
    from pipeline.dedup.testset import generated_pairs, hand_pairs

    logging.basicConfig(level=logging.WARNING)
    generated = generated_pairs(Path(data_dir), seed, per_source) if Path(data_dir).is_dir() else []
    pairs = generated + hand_pairs()
    score = evaluate(pairs)
    click.echo(f"pairs {len(pairs)} (generated {len(generated)}, hand-written {len(pairs) - len(generated)})")
    click.echo(f"precision {score.precision:.4f}  recall {score.recall:.4f}  "
               f"tp {score.tp} fp {score.fp} fn {score.fn} tn {score.tn}")
    for kind, (right, total) in sorted(score.kinds.items()):
        click.echo(f"  {kind:<26} {right:>5}/{total:<5} {right / total:.3f}")
    for miss in score.misses if misses else []:
        click.echo(json.dumps(miss, ensure_ascii=False))


@dedup.command("bench")
@click.option("--messages", default=1_000_000, show_default=True)
@click.option("--url", "urls", multiple=True, help="store URL (repeatable); a PostgreSQL URL gets a throwaway "
              "database beside it; default: a temporary SQLite file")
@click.option("--probes", default=5000, show_default=True)
@click.option("--batch", default=500, show_default=True, help="messages per lookup in the batch figures")
@click.option("--keep", default=None, help="a SQLite file or PostgreSQL database name, filled once and reused")
def dedup_bench(messages: int, urls: tuple[str, ...], probes: int, batch: int, keep: str | None) -> None:
    """Near-duplicate lookup time per message with N stored messages."""
    from pipeline.dedup.bench import run_bench

    for url in urls or (None,):
        click.echo(json.dumps(run_bench(messages, url, probes, batch=batch, keep=keep)))


@main.group()
def identity() -> None:
    """One customer across channels: suggestions, merges and un-merges."""


def _engine(config: str | None):  # type: ignore[no-untyped-def]
    from pipeline.store.database import make_engine

    return make_engine(cli_settings(config).store.url)


@identity.command("list")
@config_option
@click.option("--status", default="open", show_default=True, help="open, merged, dismissed or all")
@click.option("--limit", default=100, show_default=True)
def identity_list(config: str | None, status: str, limit: int) -> None:
    """Link suggestions (two customers who may be one person), best first, with both customers."""
    from pipeline.identity import customer_summary, list_suggestions

    engine = _engine(config)
    with engine.connect() as conn:
        for s in list_suggestions(conn, None if status == "all" else status, limit):
            click.echo(json.dumps(s | {"a": customer_summary(conn, s["customer_a"]),
                                       "b": customer_summary(conn, s["customer_b"])}, default=str, ensure_ascii=False))
    engine.dispose()


@identity.command("merges")
@config_option
@click.option("--customer", type=int, default=None)
def identity_merges(config: str | None, customer: int | None) -> None:
    """Merges done (automatic and by operators), newest first."""
    from pipeline.identity import list_merges

    engine = _engine(config)
    with engine.connect() as conn:
        for m in list_merges(conn, customer):
            click.echo(json.dumps(m, default=str))
    engine.dispose()


@identity.command("merge")
@click.argument("source", type=int)
@click.argument("target", type=int)
@config_option
@click.option("--reason", default="merged by an operator", show_default=True)
def identity_merge(source: int, target: int, config: str | None, reason: str) -> None:
    """Merge customer SOURCE into TARGET (reversible with `identity unmerge`)."""
    from pipeline.envelope import utcnow
    from pipeline.identity import IdentityError, merge

    engine = _engine(config)
    try:
        with engine.begin() as conn:
            done = merge(conn, source, target, utcnow(), reason)
    except IdentityError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        engine.dispose()
    click.echo(json.dumps({"merge_id": done.merge_id, "source": done.source, "target": done.target,
                           "kept_ticket": done.kept_ticket, "merged_ticket": done.merged_ticket}))


@identity.command("unmerge")
@click.argument("merge_id", type=int)
@config_option
def identity_unmerge(merge_id: int, config: str | None) -> None:
    """Undo merge MERGE_ID: identities, tickets and messages go back to the source customer."""
    from pipeline.envelope import utcnow
    from pipeline.identity import IdentityError, unmerge

    engine = _engine(config)
    try:
        with engine.begin() as conn:
            done = unmerge(conn, merge_id, utcnow())
    except IdentityError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        engine.dispose()
    click.echo(json.dumps({"merge_id": done.merge_id, "source": done.source, "target": done.target,
                           "reopened_ticket": done.merged_ticket}))


@identity.command("dismiss")
@click.argument("suggestion_id", type=int)
@config_option
def identity_dismiss(suggestion_id: int, config: str | None) -> None:
    """Mark a suggestion as not the same person."""
    from pipeline.envelope import utcnow
    from pipeline.identity import dismiss

    engine = _engine(config)
    with engine.begin() as conn:
        ok = dismiss(conn, suggestion_id, utcnow())
    engine.dispose()
    click.echo("dismissed" if ok else "no open suggestion with that id")
    sys.exit(0 if ok else 1)


main.add_command(classify_command)
main.add_command(classifiers_group)
main.add_command(api_group)
main.add_command(webhooks_group)

if __name__ == "__main__":
    main()
