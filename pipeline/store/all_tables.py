"""Every table of the store on one MetaData, for the migrations and the test that they agree: the
pipeline's, the operator loop's, the API's and the webhooks'."""

from downstream.webhooks import tables as webhook_tables
from pipeline.store import api_schema, operator_schema
from pipeline.store.schema import metadata

__all__ = ["api_schema", "metadata", "operator_schema", "webhook_tables"]
