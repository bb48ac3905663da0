"""Transports: how envelopes travel from connectors to the pipeline (Kafka, or in-process)."""
