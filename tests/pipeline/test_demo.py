import asyncio
import json
import subprocess
import sys

from pipeline.demo import run_demo
from tests.conftest import ROOT


def test_demo_makes_tickets_from_every_channel_and_language():
    report = asyncio.run(run_demo())
    assert report["dead_letters"] == 0 and report["failed_files"] == 0
    assert report["stored"] == report["messages"] - report["duplicates"]
    assert report["duplicates"] >= 1
    assert set(report["by_channel"]) == {"email", "chat", "social", "phone"}
    for lang in ("en", "vi", "zh", "ru", "el"):
        assert report["by_language"].get(lang, 0) >= 7, report["by_language"]
    assert len({t["number"] for t in report["tickets"]}) == len(report["tickets"]) < report["stored"]
    types = {t["type"] for t in report["tickets"]}
    assert {"complaint", "inquiry", "praise"} <= types, types
    assert "critical" in {t["urgency"] for t in report["tickets"]}


def test_demo_json_from_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "demo", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["tickets"] and report["messages"] >= 40
