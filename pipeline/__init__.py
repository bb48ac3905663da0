"""Omnintake pipeline: envelope, transport, stages, store and the runner that ties them."""
