import asyncio
import json
from pathlib import Path

import httpx
import pytest

from connectors.base import HttpIntakeConfig, InputError
from connectors.http_intake import build_app
from connectors.transcript_formats import parse_transcript
from connectors.transcripts import TranscriptRoutes, TranscriptsConfig, normalise_phone, parse_transcript_file
from tests.conftest import SAMPLES, SHARED_DATA, needs_shared_data

CALLS = sorted(p for p in (SAMPLES / "phone").iterdir() if p.suffix in (".vtt", ".srt", ".json")
               and not p.name.endswith(".meta.json"))
SHARED_TRANSCRIPTS = SHARED_DATA / "transcripts"


@pytest.mark.parametrize("path", CALLS, ids=lambda p: p.name)
def test_sample_calls_parse_with_caller_and_customer_speech(path):
    env = parse_transcript_file(path)
    assert env.channel == "phone" and env.sender.kind == "phone" and env.sender.id.startswith("+")
    segments = json.loads(env.metadata["segments"])
    assert {s["role"] for s in segments} == {"agent", "customer"}
    for seg in segments:
        assert seg["text"] in env.text
        assert (seg["text"] in env.customer_text) == (seg["role"] == "customer")


def test_srt_speaker_roles_come_from_the_sidecar(tmp_path):
    (tmp_path / "c.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nS1: Hello, I need help\n\n"
                                    "2\n00:00:02,500 --> 00:00:05,000\nS2: My card was stolen\n")
    (tmp_path / "c.meta.json").write_text(json.dumps({"caller": "+1 555 0001", "call_id": "c1",
                                                      "speakers": {"S1": "agent", "S2": "customer"}}))
    env = parse_transcript_file(tmp_path / "c.srt")
    assert env.customer_text == "My card was stolen"
    assert env.sender.id == "+15550001" and env.metadata["speaker_roles_from"] == "speakers_map"


@pytest.mark.parametrize("given, expected", [
    ("+44 20 7946-0000", "+442079460000"), ("0084 90 123 4567", "+84901234567"),
    ("(555) 010-9999", "5550109999"), ("sip:alice@pbx", "sip:alice@pbx")])
def test_caller_numbers_are_normalised_as_identities(given, expected):
    assert normalise_phone(given) == expected


def test_without_a_caller_number_the_call_is_kept_as_withheld(tmp_path):
    (tmp_path / "w.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\n<v Customer>my parcel never came\n")
    env = parse_transcript_file(tmp_path / "w.vtt")
    assert env.sender.id == "withheld:w" and env.metadata["caller_withheld"] == "true"
    assert env.customer_text == "my parcel never came"


AWS = {"jobName": "call-77", "results": {
    "transcripts": [{"transcript": "Thank you for calling. My card is blocked."}],
    "items": [
        {"start_time": "0.1", "end_time": "0.4", "speaker_label": "spk_0", "type": "pronunciation",
         "alternatives": [{"confidence": "0.99", "content": "Thank"}]},
        {"start_time": "0.4", "end_time": "0.6", "speaker_label": "spk_0", "type": "pronunciation",
         "alternatives": [{"confidence": "0.98", "content": "you"}]},
        {"start_time": "0.6", "end_time": "0.8", "speaker_label": "spk_0", "type": "pronunciation",
         "alternatives": [{"confidence": "0.97", "content": "for"}]},
        {"start_time": "0.8", "end_time": "1.2", "speaker_label": "spk_0", "type": "pronunciation",
         "alternatives": [{"confidence": "0.90", "content": "calling"}]},
        {"type": "punctuation", "alternatives": [{"confidence": "0.0", "content": "."}]},
        {"start_time": "2.0", "end_time": "2.2", "speaker_label": "spk_1", "type": "pronunciation",
         "alternatives": [{"confidence": "0.95", "content": "My"}]},
        {"start_time": "2.2", "end_time": "2.5", "speaker_label": "spk_1", "type": "pronunciation",
         "alternatives": [{"confidence": "0.80", "content": "card"}]},
        {"start_time": "2.5", "end_time": "2.6", "speaker_label": "spk_1", "type": "pronunciation",
         "alternatives": [{"confidence": "0.85", "content": "is"}]},
        {"start_time": "2.6", "end_time": "3.0", "speaker_label": "spk_1", "type": "pronunciation",
         "alternatives": [{"confidence": "0.93", "content": "blocked"}]},
    ]}}
DEEPGRAM = {"metadata": {"request_id": "dg-1"}, "results": {"channels": [], "utterances": [
    {"start": 0.0, "end": 1.5, "confidence": 0.97, "speaker": 0, "transcript": "Support, how can I help?"},
    {"start": 1.6, "end": 4.0, "confidence": 0.91, "speaker": 1, "transcript": "I was charged twice."}]}}
ASSEMBLY = {"id": "aai-1", "text": "...", "language_code": "en", "utterances": [
    {"speaker": "A", "start": 250, "end": 1900, "confidence": 0.94, "text": "Thanks for calling, this is Ann."},
    {"speaker": "B", "start": 2100, "end": 5200, "confidence": 0.88, "text": "The fridge you sold me leaks."}]}
GOOGLE = {"results": [
    {"alternatives": [{"transcript": "how may I help you", "confidence": 0.92, "words": [
        {"startTime": "0.500s", "endTime": "0.900s", "word": "how", "speakerTag": 1},
        {"startTime": "0.900s", "endTime": "1.700s", "word": "you", "speakerTag": 1}]}]},
    {"alternatives": [{"transcript": "my order is late again", "confidence": 0.87, "words": [
        {"startTime": "2s", "endTime": "2.4s", "word": "my", "speakerTag": 2},
        {"startTime": "2.4s", "endTime": "3.5s", "word": "again", "speakerTag": 2}]}]}]}
WHISPER = {"text": "...", "language": "english", "segments": [
    {"id": 0, "start": 0.0, "end": 2.0, "text": " I want a refund.", "avg_logprob": -0.105, "no_speech_prob": 0.01}]}


@pytest.mark.parametrize("doc, fmt, customer, call_id", [
    (AWS, "aws_transcribe", "My card is blocked", "call-77"),
    (DEEPGRAM, "deepgram", "I was charged twice.", "dg-1"),
    (ASSEMBLY, "assemblyai", "The fridge you sold me leaks.", "aai-1"),
    (GOOGLE, "google_stt", "my order is late again", None),
    (WHISPER, "segments", "I want a refund.", None),
], ids=lambda v: v if isinstance(v, str) else None)
def test_speech_to_text_services_json_gives_segments_roles_and_confidence(tmp_path, doc, fmt, customer, call_id):
    (tmp_path / "call.json").write_text(json.dumps({**doc, "caller": "+3021000000"}))
    env = parse_transcript_file(tmp_path / "call.json")
    segments = json.loads(env.metadata["segments"])
    assert env.metadata["transcript_format"] == fmt
    assert customer in env.customer_text
    assert all(s["confidence"] is not None and 0 < s["confidence"] <= 1 for s in segments)
    assert all(s["start"] is not None and s["end"] >= s["start"] for s in segments)
    if len(segments) > 1:
        assert [s["role"] for s in segments] == ["agent", "customer"]
        assert segments[0]["text"] not in env.customer_text
    assert env.message_id == (call_id or "call")


def test_aws_words_join_into_turns_with_the_weakest_word_confidence():
    transcript = parse_transcript(json.dumps(AWS), "json")
    assert [s.text for s in transcript.segments] == ["Thank you for calling.", "My card is blocked"]
    assert transcript.segments[1].confidence == pytest.approx(0.80)
    assert transcript.segments[1].start == pytest.approx(2.0) and transcript.segments[1].end == pytest.approx(3.0)


def test_sbv_and_jsonl_with_explicit_roles(tmp_path):
    sbv = parse_transcript("0:00:00.378,0:00:11.378\nAgent: hello\n\n0:00:11.378,0:00:12.305\nCustomer: hi\n", "sbv")
    assert [(s.speaker, s.start) for s in sbv.segments] == [("Agent", 0.378), ("Customer", 11.378)]
    rows = [{"sid": "s1", "speaker_role": "agent", "start_ms": 1000, "duration_ms": 500, "transcript": "hello"},
            {"sid": "s1", "speaker_role": "caller", "start_ms": 2000, "duration_ms": 800, "transcript": "lost card"}]
    (tmp_path / "s1.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    env = parse_transcript_file(tmp_path / "s1.jsonl")
    assert env.customer_text == "lost card" and env.message_id == "s1"
    assert json.loads(env.metadata["segments"])[1]["end"] == pytest.approx(2.8)


@pytest.mark.parametrize("name, body, reason", [
    ("a.vtt", "not a vtt\n", "WEBVTT"),
    ("b.vtt", "WEBVTT\n\nNOTE caller: +1555\n", "no cues"),
    ("c.json", '{"caller": "+1", "segments": []}', "no cues"),
    ("d.vtt", "WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n\nno timing here\n", "cue 2 has no timing line"),
    ("e.vtt", "WEBVTT\n\n00:00.000 --> 00:1d.000\nhi\n", "bad timestamp"),
    ("f.srt", "some text\n00:00:00,500 --> 00:00:07,000", "no timing line"),
    ("g.json", '{"transcript": "hello"}', "unknown transcript JSON"),
    ("h.json", '{"segments": [{"start": "soon", "text": "x"}]}', "not a number"),
    ("i.sbv", "0:00:00.378;0:00:11.378\nhi\n", "bad timing line"),
    ("j.txt", "hello", "unknown transcript format"),
    ("k.vtt", "WEBVTT\n\n00:05.000 --> 00:01.000\nbackwards\n", "ends before it starts"),
])
def test_malformed_transcripts_raise_input_errors_with_the_reason(tmp_path, name, body, reason):
    (tmp_path / name).write_text(body)
    with pytest.raises(InputError, match=reason):
        parse_transcript_file(tmp_path / name)


def test_a_transcript_in_another_encoding_is_refused_with_the_reason(tmp_path):
    (tmp_path / "x.vtt").write_bytes("WEBVTT\n\n00:00.000 --> 00:01.000\nΚαλημέρα\n".encode("iso-8859-7"))
    with pytest.raises(InputError, match="not UTF-8"):
        parse_transcript_file(tmp_path / "x.vtt")


# The webvtt-py test files: valid ones parse, the ones webvtt-py itself rejects are refused.
VALID = {"sample.vtt", "one_caption.vtt", "captions_with_bom.vtt", "using_identifiers.vtt", "cue_tags.vtt",
         "styles.vtt", "comments.vtt", "metadata_headers.vtt", "metadata_headers_multiline.vtt",
         "youtube_dl.vtt", "netflix_chicas_del_cable.vtt", "missing_caption_text.vtt", "sample.srt",
         "one_caption.srt", "missing_caption_text.srt", "sample.sbv", "two_captions.sbv", "missing_caption_text.sbv"}


@needs_shared_data()
def test_every_shared_transcript_parses_or_is_refused_with_a_reason():
    files = sorted(p for p in SHARED_TRANSCRIPTS.rglob("*") if p.is_file())
    assert len(files) >= 30
    outcomes = {}
    for path in files:
        try:
            env = parse_transcript_file(path)
            outcomes[path.name] = "ok"
            assert env.text and json.loads(env.metadata["segments"])
        except InputError as exc:
            outcomes[path.name] = str(exc)
    accepted = {name for name, outcome in outcomes.items() if outcome == "ok"}
    assert accepted >= VALID, {n: outcomes[n] for n in VALID - accepted}
    for name in outcomes.keys() - accepted:
        assert name.startswith(("invalid", "missing_timeframe", "empty", "no_captions")), (name, outcomes[name])


@needs_shared_data()
def test_harper_valley_call_keeps_both_sides_and_classifies_the_caller():
    path = next((SHARED_TRANSCRIPTS / "harper-valley").glob("*.jsonl"))
    env = parse_transcript_file(path)
    segments = json.loads(env.metadata["segments"])
    assert {s["role"] for s in segments} == {"agent", "customer"}
    assert "i lost my debit card" in env.customer_text
    assert "how can i help you today" in env.text and "how can i help you today" not in env.customer_text


class CollectingSink:
    def __init__(self, fail: bool = False) -> None:
        self.envelopes = []
        self.fail = fail

    async def accept(self, envelopes):
        if self.fail:
            raise ConnectionError("store down")
        self.envelopes.extend(envelopes)


def _post(app, path, **kwargs):
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client:
            return await client.post(path, **kwargs)
    return asyncio.run(go())


def _app(sink, **cfg):
    return build_app(HttpIntakeConfig(), sink, [TranscriptRoutes(TranscriptsConfig(**cfg))])


def test_http_endpoint_takes_a_transcript_and_its_call_fields():
    sink = CollectingSink()
    vtt = (SAMPLES / "phone" / "call-0001.vtt").read_text()
    response = _post(_app(sink), "/v1/transcripts", content=vtt, headers={"Content-Type": "text/vtt"},
                     params={"caller": "+84 90 000 1111", "call_id": "http-1"})
    assert response.status_code == 202, response.text
    assert len(sink.envelopes) == 1
    env = sink.envelopes[0]
    assert env.sender.id == "+84900001111" and env.message_id == "http-1"
    assert response.json()["envelope_id"] == env.envelope_id


def test_http_retry_without_a_call_id_is_the_same_message():
    sink = CollectingSink()
    body = json.dumps(DEEPGRAM | {"metadata": {}})
    first = _post(_app(sink), "/v1/transcripts?format=json&caller=%2B1555", content=body)
    second = _post(_app(sink), "/v1/transcripts?format=json&caller=%2B1555", content=body)
    assert first.status_code == second.status_code == 202
    assert sink.envelopes[0].delivery_key == sink.envelopes[1].delivery_key


@pytest.mark.parametrize("params, body, headers, status, reason", [
    ({}, "WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", {}, 422, "say the format"),
    ({"format": "vtt"}, "nope", {}, 422, "WEBVTT"),
    ({"format": "doc"}, "x", {}, 422, "unknown transcript format"),
    ({"format": "json"}, "{", {}, 422, "does not parse"),
    ({"format": "vtt"}, "WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", {"X-Api-Key": "wrong"}, 401, "X-Api-Key"),
])
def test_http_bad_transcripts_get_a_4xx_with_the_reason_and_nothing_is_stored(params, body, headers, status, reason):
    sink = CollectingSink()
    response = _post(_app(sink, api_keys=["k1"] if "X-Api-Key" in headers else []), "/v1/transcripts",
                     params=params, content=body, headers=headers)
    assert response.status_code == status and reason in response.json()["detail"]
    assert sink.envelopes == []


def test_http_sink_failure_is_a_503_to_retry():
    response = _post(_app(CollectingSink(fail=True)), "/v1/transcripts?format=vtt&call_id=c9",
                     content="WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n")
    assert response.status_code == 503 and response.headers["Retry-After"]


def test_intake_transcript_parse_cli_prints_segments(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    (tmp_path / "bad.srt").write_text("garbage")
    result = CliRunner().invoke(main, ["transcript", "parse", "--json", str(SAMPLES / "phone" / "call-0004.srt"),
                                       str(tmp_path / "bad.srt")])
    assert result.exit_code == 0, result.output
    good, bad = (json.loads(line) for line in result.output.splitlines())
    assert good["ok"] and good["caller"].startswith("+") and good["format"] == "srt"
    assert {"speaker", "role", "start", "end", "text", "confidence"} <= good["segments"][0].keys()
    assert {s["role"] for s in good["segments"]} == {"agent", "customer"}
    assert not bad["ok"] and "timing" in bad["error"]
    assert Path(good["file"]).name == "call-0004.srt"


def test_conformance_upload_server_restarted_mid_stream_of_5000_calls():
    from connectors.http_intake import HttpIntakeConnector
    from tests.connectors.conformance import restart_mid_stream
    from tests.connectors.test_http_intake import free_port

    port = free_port()
    calls = [(f"call-{i}", f"WEBVTT\n\n00:00.000 --> 00:02.000\n<v Customer>order {i} never arrived\n")
             for i in range(5000)]
    expected = {f"phone:phone:{call_id}" for call_id, _ in calls}

    async def upload(client: httpx.AsyncClient, call_id: str, vtt: str) -> None:
        while True:  # a well-behaved uploader: retry on 503 and on a refused connection
            try:
                answer = await client.post(f"http://127.0.0.1:{port}/v1/transcripts", content=vtt,
                                           params={"call_id": call_id, "caller": "+15550100"},
                                           headers={"Content-Type": "text/vtt"})
            except httpx.TransportError:
                await asyncio.sleep(0.02)
                continue
            if answer.status_code == 202:
                return
            assert answer.status_code == 503, answer.text

    async def feed():
        queue = list(reversed(calls))
        async with httpx.AsyncClient(timeout=10) as client:
            async def worker():
                while queue:
                    await upload(client, *queue.pop())
            await asyncio.gather(*(worker() for _ in range(8)))

    def make():
        return HttpIntakeConnector(HttpIntakeConfig(port=port, enabled=False), [TranscriptRoutes(TranscriptsConfig())])

    report = asyncio.run(restart_mid_stream(make, expected, feed=feed, restarts=2, seed=5))
    report.assert_exactly_once()
    assert len(report.stops) == 3 and report.sink_failures > 0
