"""Which connectors exist, their config section under `connectors:`, and building the enabled ones.

HTTP channels (transcript uploads, webhooks) are routes on the one intake server, so enabling any
of them serves it even when `http_intake` itself (POST /v1/messages) is off.
"""

from __future__ import annotations

from connectors.base import Connector, HttpRoutes
from connectors.config import ConnectorsConfig
from connectors.cursors import CursorStore

__all__ = ["ConnectorsConfig", "enabled_connectors"]


def enabled_connectors(cfg: ConnectorsConfig, cursors: CursorStore) -> list[Connector]:
    # imported here: each pulls in its client library, and only the service builds connectors
    from connectors.dropfolder import DropFolderConnector
    from connectors.email_imap import ImapConnector
    from connectors.http_intake import HttpIntakeConnector
    from connectors.social_mastodon import MastodonConnector
    from connectors.social_meta import MetaWebhookRoutes
    from connectors.social_x import XWebhookRoutes
    from connectors.telegram import TelegramConnector, TelegramWebhookRoutes
    from connectors.transcripts import TranscriptRoutes

    found: list[Connector] = []
    if cfg.dropfolder.enabled:
        found.append(DropFolderConnector(cfg.dropfolder))
    if cfg.imap.enabled:
        found.append(ImapConnector(cfg.imap, cursors))
    if cfg.social_mastodon.enabled:
        found.append(MastodonConnector(cfg.social_mastodon, cursors))
    routes: list[HttpRoutes] = []
    if cfg.transcripts.enabled:
        routes.append(TranscriptRoutes(cfg.transcripts))
    if cfg.telegram.enabled:
        found.append(TelegramConnector(cfg.telegram, cursors))  # webhook mode: registers the webhook, then idles
        if cfg.telegram.mode == "webhook":
            routes.append(TelegramWebhookRoutes(cfg.telegram))
    if cfg.social_meta.enabled:
        routes.append(MetaWebhookRoutes(cfg.social_meta))
    if cfg.social_x.enabled:
        routes.append(XWebhookRoutes(cfg.social_x))
    if cfg.http_intake.enabled or routes:
        found.append(HttpIntakeConnector(cfg.http_intake, routes))
    return found
