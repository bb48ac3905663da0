"""The language history's one-query-per-batch reads on PostgreSQL (window functions)."""

import pytest

from classifiers.language import LanguageDetector
from classifiers.rules import RuleClassifier
from pipeline.config import Settings, StoreConfig
from pipeline.processor import Processor
from pipeline.store.database import make_engine, upgrade
from tests.pipeline.test_language_history import check_customer_and_channel_priors

pytestmark = pytest.mark.postgres


def test_customer_and_channel_priors_on_postgres(pg_url, record):
    upgrade(pg_url)
    engine = make_engine(pg_url)
    try:
        processor = Processor(Settings(store=StoreConfig(url=pg_url)), engine, LanguageDetector(), RuleClassifier())
        check_customer_and_channel_priors(engine, processor, record)
        processor.close()
    finally:
        engine.dispose()
