import asyncio
import json
import shutil
from pathlib import Path

from connectors.base import DropFolderConfig
from connectors.dropfolder import DropFolderConnector
from tests.conftest import SAMPLES
from tests.connectors.conformance import restart_mid_stream


class RecordingSink:
    def __init__(self, fail: bool = False) -> None:
        self.envelopes = []
        self.fail = fail

    async def accept(self, envelopes):
        if self.fail:
            raise ConnectionError("broker down")
        self.envelopes.extend(envelopes)


def test_files_move_to_done_only_after_acceptance(tmp_path):
    shutil.copytree(SAMPLES / "chat", tmp_path / "chat")
    connector = DropFolderConnector(DropFolderConfig(path=str(tmp_path)))

    async def refused_until_stopped():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.5, stop.set)
        return await connector.scan_once(RecordingSink(fail=True), stop)

    assert asyncio.run(refused_until_stopped()) == 0
    assert connector.metrics.errors >= 2, "the scan retried the sink until stopped"
    assert len(list((tmp_path / "chat").glob("*.json"))) == 5, "nothing may move when the sink refused"
    sink = RecordingSink()
    taken = asyncio.run(connector.scan_once(sink))
    assert taken == len(sink.envelopes) >= 14
    assert not list((tmp_path / "chat").glob("*.json"))
    assert len(list((tmp_path / "done" / "chat").glob("*.json"))) == 5
    for envelope in sink.envelopes:  # raw_ref points where the received bytes are kept
        assert Path(envelope.raw_ref.removeprefix("file://").split("#")[0]).is_file()


def test_a_bad_file_is_quarantined_with_its_reason_and_the_rest_flows(tmp_path):
    (tmp_path / "broken.json").write_text("{ nope")
    (tmp_path / "bad.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\n<v Customer>hi\n\n<v Customer>no timing\n")
    shutil.copy(SAMPLES / "email" / sorted(p.name for p in (SAMPLES / "email").glob("*.eml"))[0], tmp_path)
    connector = DropFolderConnector(DropFolderConfig(path=str(tmp_path)))
    sink = RecordingSink()
    asyncio.run(connector.scan_once(sink))
    assert len(sink.envelopes) == 1
    assert "not valid JSON" in (tmp_path / "failed" / "broken.json.reason.txt").read_text()
    assert "cue 2 has no timing line" in (tmp_path / "failed" / "bad.vtt.reason.txt").read_text()
    assert connector.metrics.rejected == 2


def test_a_file_that_breaks_the_parser_in_any_way_is_quarantined(tmp_path):
    (tmp_path / "call.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nS1: hello\n")
    (tmp_path / "call.meta.json").write_text('{"caller": "+1555", "speakers": ["not", "a", "mapping"]}')
    connector = DropFolderConnector(DropFolderConfig(path=str(tmp_path)))
    sink = RecordingSink()
    asyncio.run(connector.scan_once(sink))
    assert sink.envelopes == []
    assert (tmp_path / "failed" / "call.srt.reason.txt").exists()
    assert (tmp_path / "failed" / "call.meta.json").exists()


def test_run_survives_a_failing_sink_and_takes_the_file_later(tmp_path):
    shutil.copy(SAMPLES / "chat" / "telegram_el.json", tmp_path)

    class DownThenUp(RecordingSink):
        calls = 0

        async def accept(self, envelopes):
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("broker down")
            await super().accept(envelopes)

    async def scenario():
        sink = DownThenUp()
        stop = asyncio.Event()
        task = asyncio.create_task(DropFolderConnector(DropFolderConfig(path=str(tmp_path), poll_interval_s=0.05))
                                   .run(sink, stop))
        while not sink.envelopes:
            await asyncio.sleep(0.05)
        stop.set()
        await task
        return sink

    sink = asyncio.run(scenario())
    assert sink.calls >= 2 and sink.envelopes
    assert (tmp_path / "done" / "telegram_el.json").exists()


def test_conformance_restart_mid_stream_of_5000_files(tmp_path):
    def write_messages():
        for batch in range(50):
            rows = [{"channel": "web", "account": "forms", "message_id": f"m{batch}-{i}",
                     "sender": {"kind": "email", "id": f"c{i}@example.com"},
                     "received_at": "2026-11-20T09:00:00+00:00", "text": f"message {batch}-{i}"} for i in range(100)]
            (tmp_path / f"batch-{batch:03}.json").write_text(json.dumps(rows))
        return {f"web:forms:m{batch}-{i}" for batch in range(50) for i in range(100)}

    expected = write_messages()

    def make():
        return DropFolderConnector(DropFolderConfig(path=str(tmp_path), poll_interval_s=0.05))

    report = asyncio.run(restart_mid_stream(make, expected, restarts=3, seed=7))
    report.assert_exactly_once()
    assert report.sink_failures > 0 and len(report.stops) == 4
    assert len(list((tmp_path / "done").glob("*.json"))) == 50
