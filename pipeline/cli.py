"""The `intake` command line. Its commands and output formats are a contract scripts rely on."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import click

from pipeline.config import ConfigError, Settings, load_settings


def _settings(config: str | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _setup_logging(settings: Settings) -> None:
    from pipeline.logs import configure

    configure(settings.logging)


@click.group()
def main() -> None:
    """Omnintake: customer messages from every channel into classified tickets."""


@main.command()
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None, help="YAML settings file")
def run(config: str | None) -> None:
    """Run connectors, pipeline and relay until SIGTERM."""
    from pipeline.service import install_signal_handlers, run_service

    settings = _settings(config or _default_config())
    _setup_logging(settings)

    async def _main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await run_service(settings, stop)

    asyncio.run(_main())


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
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--revision", default="head")
def db_upgrade(config: str | None, revision: str) -> None:
    """Apply migrations to the configured store."""
    from pipeline.store.database import upgrade

    settings = _settings(config or _default_config())
    upgrade(settings.store.url, revision)
    click.echo(f"database at {revision}")


@main.group()
def dlq() -> None:
    """Dead letters: list and reprocess."""


@dlq.command("list")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def dlq_list(config: str | None, limit: int, as_json: bool) -> None:
    from pipeline.dlq_commands import list_dead_letters

    letters = list_dead_letters(_settings(config or _default_config()), limit)
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
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
def dlq_reprocess(ids: tuple[str, ...], config: str | None) -> None:
    """Send chosen dead letters through the pipeline again."""
    from pipeline.dlq_commands import reprocess

    outcome = reprocess(_settings(config or _default_config()), list(ids))
    click.echo(json.dumps(outcome))


@main.command()
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--messages", default=20000, show_default=True)
@click.option("--latency-rate", type=float, default=None,
              help="msgs/s for the latency phase (default: half the throughput)")
@click.option("--json", "as_json", is_flag=True)
def bench(config: str | None, messages: int, latency_rate: float | None, as_json: bool) -> None:
    """Benchmark the pipeline on Kafka + the configured store, beside a raw aiokafka loop."""
    from pipeline.bench import run_bench

    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run_bench(_settings(config or _default_config()), messages, latency_rate))
    click.echo(json.dumps(result, indent=None if as_json else 2))


@main.group()
def lang() -> None:
    """Language detection."""


@lang.command("detect")
@click.argument("texts", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def lang_detect(texts: tuple[str, ...], as_json: bool) -> None:
    """Detect the language of each argument, or of each line of stdin."""
    from classifiers.language import LanguageDetector

    detector = LanguageDetector()
    lines = list(texts) if texts else [line.rstrip("\n") for line in sys.stdin]
    for text in lines:
        result = detector.detect(text)
        click.echo(json.dumps(result.as_dict()) if as_json else f"{result.lang}\t{result.confidence:.3f}\t{text}")


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


def _default_config() -> str | None:
    return "config.yaml" if Path("config.yaml").is_file() else None


if __name__ == "__main__":
    main()
