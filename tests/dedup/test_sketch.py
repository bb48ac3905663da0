"""Sketches: the same message re-cased, re-punctuated, trimmed or forwarded with quotes is close;
another order number, another message or a translation is not; scripts without spaces work."""

from pipeline.dedup.sketch import MIN_SHINGLES, Sketch, band_keys, compare, normalise, sketch, tokens

COMPLAINT = "My order 48213 arrived with a cracked screen, the box was crushed. I want a refund as soon as possible."


def near(a: str, b: str) -> float:
    return compare(sketch(a), sketch(b)).score


def test_variants_of_one_message_are_close():
    assert near(COMPLAINT, COMPLAINT.upper()) == 1.0
    assert near(COMPLAINT, COMPLAINT.replace(",", "").replace(".", "!!!")) == 1.0
    assert near(COMPLAINT, COMPLAINT[:70]) >= 0.9  # trimmed: contained
    header = "On Mon, 16 Nov 2026 at 08:42, Me <me@x.com> wrote:"
    forwarded = f"Any news?\n\n{header}\n> {COMPLAINT[:50]}\n> {COMPLAINT[50:]}"
    assert "wrote" not in normalise(forwarded) and near(COMPLAINT, forwarded) >= 0.9


def test_another_order_number_or_another_message_is_far():
    other = compare(sketch(COMPLAINT), sketch(COMPLAINT.replace("48213", "48977")))
    assert other.score == 0.0 and "identifiers" in other.reason
    assert near(COMPLAINT, "Can you tell me when the store opens on Sunday?") < 0.2
    assert near(COMPLAINT, "Đơn hàng 48213 của tôi đến nơi với màn hình bị nứt, tôi muốn hoàn tiền.") < 0.2
    # a number on one side only (trimmed away) is not a different identifier
    assert near(COMPLAINT, COMPLAINT.replace("48213 ", "")) > 0.6


def test_scripts_without_spaces_are_shingled_by_character():
    assert tokens(normalise("快递三天了123还没到")) == ["快", "递", "三", "天", "了", "123", "还", "没", "到"]
    zh = "快递三天了还没有送到，客服电话也打不通，请尽快给我处理一下，谢谢。"
    assert near(zh, zh[:20]) >= 0.9
    assert near(zh, "外卖送到的时候已经凉了，而且少了一份米饭。") < 0.2
    ja = "荷物がまだ届いていません。追跡番号を確認しても何も表示されません。"
    assert near(ja, ja.replace("。", "")) == 1.0
    assert sketch("🙂🙂🙁 👍👍").size >= MIN_SHINGLES - 1


def test_sketch_round_trips_and_long_texts_are_sampled():
    long = " ".join(f"word{i} filler{i % 7}" for i in range(600))
    s = sketch(long)
    back = Sketch.from_bytes(s.to_bytes())
    assert (back.size, back.idents, list(back.hashes)) == (s.size, s.idents, list(s.hashes))
    assert not s.exact and compare(s, sketch(long + " and one more line")).jaccard > 0.9


def test_band_keys_are_shared_by_near_duplicates_only():
    mine = set(band_keys(sketch(COMPLAINT)))
    assert len(mine) == 16
    assert mine & set(band_keys(sketch(COMPLAINT.lower() + " please")))
    assert not mine & set(band_keys(sketch("The washing machine leaks water from the bottom every time it spins.")))
    assert band_keys(sketch("ok")) == []
