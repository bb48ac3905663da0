import json

import pytest
from pydantic import ValidationError

from pipeline.envelope import Envelope
from pipeline.schemas import schemas
from tests.conftest import ROOT


def test_round_trips_through_json(envelope_dict):
    env = Envelope.model_validate(envelope_dict())
    again = Envelope.model_validate_json(env.model_dump_json())
    assert again == env
    assert again.envelope_id == env.envelope_id


def test_delivery_key_is_stable_and_partition_key_follows_the_customer(envelope_dict):
    a = Envelope.model_validate(envelope_dict(message_id="42", customer="bob"))
    b = Envelope.model_validate(envelope_dict(message_id="42", customer="bob", text="other"))
    c = Envelope.model_validate(envelope_dict(message_id="43", customer="bob"))
    assert a.delivery_key == b.delivery_key != c.delivery_key
    assert a.partition_key == c.partition_key == b"telegram_user:bob"


def test_is_frozen(envelope_dict):
    env = Envelope.model_validate(envelope_dict())
    with pytest.raises(ValidationError):
        env.text = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("change, where", [
    ({"version": 2}, "version"),
    ({"received_at": "2026-11-20T09:00:00"}, "received_at"),
    ({"channel": "fax"}, "channel"),
    ({"surprise": 1}, "surprise"),
])
def test_rejects_bad_envelopes_naming_the_field(envelope_dict, change, where):
    with pytest.raises(ValidationError) as info:
        Envelope.model_validate(envelope_dict(**change))
    assert where in str(info.value)


def test_published_schemas_match_the_models():
    for name, body in schemas().items():
        committed = json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8"))
        assert committed == body, f"schemas/{name} is stale: run `intake schema export`"


def test_fast_uuid5_equals_the_standard_one():
    import uuid

    from pipeline.envelope import uuid5

    for name in ["", "chat:tg:1", "email:box:<a@b>", "Đơn hàng 订单 заказ"]:
        assert uuid5(uuid.NAMESPACE_URL, name) == str(uuid.uuid5(uuid.NAMESPACE_URL, name))
