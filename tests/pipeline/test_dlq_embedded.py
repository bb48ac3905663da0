import json
import subprocess
import sys

from tests.conftest import ROOT


def intake(*args, env_url):
    import os

    env = os.environ | {"INTAKE_STORE__URL": env_url, "INTAKE_TRANSPORT": "embedded"}
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_list_and_reprocess_dead_letters(processor, sqlite_url, record, envelope_dict):
    from pipeline.deadletters import SqlDeadLetterQueue
    from pipeline.processor import RawRecord

    fixed = json.dumps(envelope_dict("now valid", "dl")).encode()
    result = processor.process([RawRecord(b"{broken", "t/1"), record("fine", "ok")])
    queue = SqlDeadLetterQueue(processor.tickets.engine)
    queue.put(result.dead_letters)
    queue.put([result.dead_letters[0].__class__(fixed, "ticket", "db hiccup", "OperationalError", 3, "t/2")])
    listed = [json.loads(x) for x in intake("dlq", "list", "--json", env_url=sqlite_url).splitlines()]
    assert {d["stage"] for d in listed} == {"validate", "ticket"}
    ids = {d["stage"]: d["id"] for d in listed}
    outcome = json.loads(intake("dlq", "reprocess", ids["ticket"], ids["validate"], env_url=sqlite_url))
    assert outcome == {"found": 2, "missing": [], "stored": 1, "duplicates": 0, "dead_again": 1}
    again = [json.loads(x) for x in intake("dlq", "list", "--json", env_url=sqlite_url).splitlines()]
    assert sum(d["reprocessed"] for d in again) == 2
