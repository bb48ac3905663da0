"""A small, made-up complaint / praise set in five languages for training tests."""

COMPLAINT = ["the order arrived broken, I want a refund", "terrible service, nobody answers",
             "sản phẩm bị lỗi, giao hàng quá chậm", "thất vọng, hàng kém chất lượng",
             "送餐太慢了，菜都凉了", "质量太差，要退款", "ужасный сервис, деньги не вернули",
             "товар сломался, очень плохо", "απαράδεκτη εξυπηρέτηση, χαλασμένο προϊόν", "πολύ κακό, θέλω επιστροφή"]
PRAISE = ["great service, thank you so much", "excellent quality, I love it",
          "sản phẩm tuyệt vời, giao hàng nhanh", "rất hài lòng, cảm ơn shop",
          "味道很好，送餐很快", "非常满意，好评", "отличный сервис, спасибо большое",
          "очень доволен, всё супер", "εξαιρετική εξυπηρέτηση, ευχαριστώ", "πολύ καλό προϊόν, μπράβο"]


def rows() -> list[tuple[str, str]]:
    """Each sentence with a few variants, so the model has several examples per n-gram."""
    out = []
    for label, texts in (("complaint", COMPLAINT), ("praise", PRAISE)):
        for text in texts:
            out += [(text, label), (text.upper(), label), (f"{text}!", label), (f"hi, {text}.", label)]
    return out
