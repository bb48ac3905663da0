import json

import pytest

from connectors.base import InputError
from connectors.transcripts import parse_transcript_file
from tests.conftest import SAMPLES

CALLS = sorted(p for p in (SAMPLES / "phone").iterdir() if p.suffix in (".vtt", ".srt", ".json")
               and not p.name.endswith(".meta.json"))


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
    (tmp_path / "c.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nS1: Hello, support here\n\n"
                                    "2\n00:00:02,500 --> 00:00:05,000\nS2: My card was stolen\n")
    (tmp_path / "c.meta.json").write_text(json.dumps({"caller": "+15550001", "call_id": "c1",
                                                      "speakers": {"S1": "agent", "S2": "customer"}}))
    env = parse_transcript_file(tmp_path / "c.srt")
    assert env.customer_text == "My card was stolen"


@pytest.mark.parametrize("name, body, reason", [
    ("a.vtt", "not a vtt\n", "WEBVTT"),
    ("b.vtt", "WEBVTT\n\nNOTE caller: +1555\n", "no cues"),
    ("c.json", '{"caller": "+1", "segments": []}', "segments"),
    ("d.vtt", "WEBVTT\n\n00:00.000 --> 00:01.000\n<v Customer>hi\n", "caller"),
])
def test_malformed_transcripts_raise_input_errors_with_the_reason(tmp_path, name, body, reason):
    (tmp_path / name).write_text(body)
    with pytest.raises(InputError, match=reason):
        parse_transcript_file(tmp_path / name)
