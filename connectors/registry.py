"""Which connectors exist, their config section under `connectors:`, and building the enabled ones.

HTTP channels (transcript uploads, webhooks) are routes on the one intake server, so enabling any
of them serves it even when `http_intake` itself (POST /v1/messages) is off.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from connectors.base import Connector, DropFolderConfig, HttpIntakeConfig, HttpRoutes
from connectors.cursors import CursorStore
from connectors.dropfolder import DropFolderConnector
from connectors.email_imap import ImapConfig, ImapConnector
from connectors.http_intake import HttpIntakeConnector
from connectors.social_mastodon import MastodonConfig, MastodonConnector
from connectors.social_meta import MetaConfig, MetaWebhookRoutes
from connectors.social_x import XConfig, XWebhookRoutes
from connectors.telegram import TelegramConfig, TelegramConnector, TelegramWebhookRoutes
from connectors.transcripts import TranscriptRoutes, TranscriptsConfig


class ConnectorsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    dropfolder: DropFolderConfig = DropFolderConfig()
    http_intake: HttpIntakeConfig = HttpIntakeConfig()
    transcripts: TranscriptsConfig = TranscriptsConfig()
    imap: ImapConfig = ImapConfig()
    telegram: TelegramConfig = TelegramConfig()
    social_meta: MetaConfig = MetaConfig()
    social_x: XConfig = XConfig()
    social_mastodon: MastodonConfig = MastodonConfig()


def enabled_connectors(cfg: ConnectorsConfig, cursors: CursorStore) -> list[Connector]:
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
