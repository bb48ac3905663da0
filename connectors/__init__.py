"""Channel connectors: each turns a channel's messages into Envelopes and hands them to a Sink.

Connectors never import Kafka: the Sink they are given decides where envelopes go.
"""
