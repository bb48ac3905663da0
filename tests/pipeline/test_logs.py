import asyncio
import json
import logging

from pipeline.logs import JsonFormatter, PlainFormatter, log_context


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("omnintake.test", logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    return record


def test_json_line_carries_bound_fields_and_extra() -> None:
    with log_context(message_id="m-1", delivery_key="email:support:<a@b>"):
        line = json.loads(JsonFormatter().format(_record("stored", ticket="OMN-1")))
    assert line["msg"] == "stored"
    assert line["message_id"] == "m-1"
    assert line["delivery_key"] == "email:support:<a@b>"
    assert line["ticket"] == "OMN-1"


def test_context_is_restored_and_nested() -> None:
    with log_context(message_id="outer"):
        with log_context(message_id="inner", stage="classify"):
            inner = json.loads(JsonFormatter().format(_record("x")))
        outer = json.loads(JsonFormatter().format(_record("y")))
    after = json.loads(JsonFormatter().format(_record("z")))
    assert (inner["message_id"], inner["stage"]) == ("inner", "classify")
    assert outer["message_id"] == "outer" and "stage" not in outer
    assert "message_id" not in after


def test_context_follows_threads_started_with_to_thread() -> None:
    async def main() -> str:
        with log_context(message_id="m-9"):
            return await asyncio.to_thread(lambda: JsonFormatter().format(_record("in a thread")))

    assert json.loads(asyncio.run(main()))["message_id"] == "m-9"


def test_plain_line_appends_fields() -> None:
    with log_context(message_id="m-2"):
        assert PlainFormatter().format(_record("hello")).endswith("hello message_id=m-2")
    assert PlainFormatter().format(_record("bare")).endswith("bare")


def test_a_line_about_one_message_carries_its_ids(processor, record):
    import io

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("pipeline.store.tickets")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        processor.process([record("my parcel is late", "ann")])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    [line] = [json.loads(raw) for raw in out.getvalue().splitlines() if "dedup:" in raw]
    assert line["message_id"] and line["delivery_key"].endswith(line["message_id"]) and line["stage"] == "dedup"
