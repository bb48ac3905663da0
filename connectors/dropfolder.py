"""A drop folder: .eml, transcript (.vtt, .srt, speech-to-text .json) and message .json files.

A file moves to `done/` only after the sink durably accepted its envelopes; a file that cannot
be parsed moves to `failed/` with a `.reason.txt` beside it; the rest keeps flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from connectors.base import Connector, DropFolderConfig, InputError, Sink, deliver
from connectors.email_mime import parse_email
from connectors.json_messages import parse_messages
from connectors.metrics import ConnectorMetrics
from connectors.transcript_formats import looks_like_transcript
from connectors.transcripts import FORMATS, read_transcript, to_envelope
from pipeline.envelope import Envelope

log = logging.getLogger(__name__)
SUFFIXES = {".eml", *FORMATS}


def parse_file(path: Path, account: str, raw_ref: str, trusted_authserv_ids: tuple[str, ...] = ()) -> list[Envelope]:
    """`raw_ref` is where the file will be kept once accepted (under `done/`)."""
    suffix = path.suffix.lower()
    if suffix == ".eml":
        return [parse_email(path.read_bytes(), account, raw_ref, trusted_authserv_ids=trusted_authserv_ids)]
    if suffix in FORMATS and suffix != ".json":
        return [to_envelope(read_transcript(path), raw_ref, path.stem)]
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON: {exc}") from exc
    if looks_like_transcript(data):
        return [to_envelope(read_transcript(path), raw_ref, path.stem)]
    return parse_messages(raw, raw_ref)


def pending_files(root: Path) -> list[Path]:
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
             and not p.name.endswith(".meta.json") and not {"done", "failed"} & set(p.relative_to(root).parts)]
    return sorted(files)


class DropFolderConnector(Connector):
    name = "dropfolder"

    def __init__(self, cfg: DropFolderConfig) -> None:
        self.cfg = cfg
        self.root = Path(cfg.path)
        self.metrics = ConnectorMetrics(self.name)

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        while not stop.is_set():
            try:
                await self.scan_once(sink, stop)
            except Exception as exc:  # the folder itself failed (disk, permissions): retry on the next scan
                self.metrics.error(exc)
                log.error("drop folder %s: %r; retrying on the next scan", self.root, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cfg.poll_interval_s)

    async def scan_once(self, sink: Sink, stop: asyncio.Event | None = None) -> int:
        """Hand pending files to the sink one by one, until done or stopped. A file moves to `done/`
        only once accepted; while the sink fails, `deliver` retries and the scan waits."""
        stop = stop or asyncio.Event()
        taken = 0
        files = await asyncio.to_thread(pending_files, self.root)
        for left, path in zip(range(len(files), 0, -1), files, strict=True):
            if stop.is_set():
                break
            self.metrics.lag = left
            try:
                kept_at = (self.root / "done" / path.relative_to(self.root)).resolve().as_uri()
                envelopes = await asyncio.to_thread(parse_file, path, self.cfg.account, kept_at,
                                                      self.cfg.trusted_authserv_ids)
            except Exception as exc:  # whatever a file does to the parser, it is that file's fault
                await asyncio.to_thread(self._move, path, "failed", f"{exc.__class__.__name__}: {exc}")
                continue
            self.metrics.received += len(envelopes)
            try:
                if not await deliver(sink, envelopes, stop, self.metrics):
                    break  # stopped while the sink was down: the file stays for the next run
            except InputError as exc:  # the sink refuses these envelopes for good (too large, ...)
                await asyncio.to_thread(self._move, path, "failed", f"refused: {exc}")
                continue
            await asyncio.to_thread(self._move, path, "done")
            taken += len(envelopes)
        self.metrics.lag = 0 if not stop.is_set() else self.metrics.lag
        return taken

    def _move(self, path: Path, where: str, reason: str | None = None) -> None:
        target_dir = self.root / where / path.parent.relative_to(self.root)
        target_dir.mkdir(parents=True, exist_ok=True)
        moved = []
        for file in (path, path.with_suffix(".meta.json")):
            if file.exists() and file != target_dir / file.name:
                file.replace(target_dir / file.name)
                moved.append(file.name)
        if reason:
            self.metrics.rejected += 1
            (target_dir / f"{path.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
            log.warning("quarantined %s: %s", path, reason)
