"""`intake run` on the shipped embedded default: drop folder and HTTP intake into SQLite, until SIGTERM."""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import yaml
from sqlalchemy import create_engine, func, select

from pipeline.store.schema import messages, tickets
from tests.conftest import ROOT, SAMPLES
from tests.fakes import telegram_updates as updates
from tests.fakes.social_providers import FakeMeta
from tests.fakes.telegram_api import TOKEN, FakeTelegram


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_takes_files_and_http_messages_and_stops_cleanly(tmp_path, envelope_dict):
    port = free_port()
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["store"]["url"] = f"sqlite:///{tmp_path}/run.db"
    config["connectors"]["dropfolder"].update(path=str(tmp_path / "inbox"), poll_interval_s=0.2)
    config["connectors"]["http_intake"].update(port=port, api_keys=["k1"])
    config["relay"].update(jsonl_path=str(tmp_path / "events.jsonl"), poll_interval_s=0.2)
    ops_port = free_port()
    config["ops"].update(enabled=True, port=ops_port)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "inbox").mkdir()
    shutil.copy(SAMPLES / "chat" / "telegram_ru.json", tmp_path / "inbox")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "--config", str(tmp_path / "config.yaml")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        body = json.dumps(envelope_dict("Где мой заказ 991? Жду уже две недели!", "http-user")).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/messages", data=body, method="POST",
                                         headers={"X-Api-Key": "k1", "Content-Type": "application/json"})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    assert answer.status == 202
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        engine = create_engine(config["store"]["url"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list((tmp_path / "inbox" / "done").glob("*.json")):
            time.sleep(0.2)
        time.sleep(1)  # one relay poll
        with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/readyz", timeout=5) as answer:
            ready = json.loads(answer.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/metrics", timeout=5) as answer:
            exposition = answer.read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, output
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(messages)).scalar()
        languages = set(conn.execute(select(tickets.c.language)).scalars())
    chat = json.loads((SAMPLES / "chat" / "telegram_ru.json").read_text())
    assert stored == len({m["message_id"] for m in chat}) + 1
    assert languages == {"ru"}
    events = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(events) >= stored
    assert ready == {"status": "ready", "checks": ["store"]}
    line = r"^omnintake_pipeline_messages_total\{channel=\"\w+\",step=\"prepare\"\} (\S+)$"
    prepared = re.findall(line, exposition, re.M)
    assert sum(float(n) for n in prepared) >= stored, exposition[:2000]
    engine.dispose()


def test_run_takes_telegram_meta_and_phone_from_config_alone(tmp_path):
    """Every channel switched on in config.yaml only: Telegram long polling against a Bot API server,
    a signed Meta webhook and a transcript upload, into one embedded `intake run`."""
    port = free_port()
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["store"]["url"] = f"sqlite:///{tmp_path}/run.db"
    config["connectors"]["dropfolder"]["enabled"] = False
    config["connectors"]["http_intake"].update(port=port)
    config["ops"].update(port=free_port())
    config["relay"].update(jsonl_path=str(tmp_path / "events.jsonl"))
    with FakeTelegram() as telegram:
        config["connectors"]["telegram"].update(enabled=True, token=TOKEN, base_url=telegram.base_url,
                                                poll_timeout_s=1, account="telegram:@shop_bot")
        config["connectors"]["social_meta"].update(enabled=True, app_secret="meta-app-secret", verify_token="v")
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        telegram.enqueue({"message": updates.message(41, text="Đơn hàng 1182 giao trễ 5 ngày rồi, shop xử lý giúp")})
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "--config",
                                 str(tmp_path / "config.yaml")], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            meta = FakeMeta(f"http://127.0.0.1:{port}/webhooks/meta", "meta-app-secret", deadline_s=60)
            post = meta.page(meta.entry(messaging=[meta.dm("2719", "My parcel arrived smashed, I want a refund",
                                                           "m_abc")]))
            assert asyncio.run(meta.deliver_all([post]))[0].final == 200
            vtt = (SAMPLES / "phone" / "call-0001.vtt").read_bytes()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/transcripts", data=vtt, method="POST",
                                             headers={"Content-Type": "text/vtt"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 202
            engine = create_engine(config["store"]["url"])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    channels = set(conn.execute(select(messages.c.channel)).scalars())
                if channels == {"chat", "social", "phone"}:
                    break
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, output
    assert channels == {"chat", "social", "phone"}, output
    assert TOKEN.split(":")[1] not in output, "the bot token must not reach the log"
    engine.dispose()
