"""Webhooks: ticket events delivered to subscribers' URLs, signed, in order per ticket, retried with
backoff for at least a day, then kept as per-subscription dead letters that can be redelivered.

The functions the REST API and the console call live in `subscriptions` and `deliveries`; the
long-running part is `dispatcher.WebhookDispatcher`; `commands.webhooks_group` is `intake webhooks`.
"""
