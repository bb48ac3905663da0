"""Every connector's settings (the `connectors:` section of config.yaml), apart from the code that
runs them: reading config must not import Telegram, FastAPI or IMAP clients, so every `intake`
command starts fast.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connectors.base import DropFolderConfig, HttpIntakeConfig


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImapAccountConfig(_Frozen):
    name: str | None = Field(default=None, description="envelope account; the username when unset")
    host: str
    port: int | None = Field(default=None, ge=1, le=65535, description="993 with ssl, else 143")
    security: Literal["ssl", "starttls", "none"] = "ssl"
    ca_file: str | None = Field(default=None, description="CA bundle that signs the server's certificate")
    verify_tls: bool = True
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    oauth2_token: SecretStr | None = Field(default=None, description="access token for XOAUTH2")
    folders: tuple[str, ...] = Field(default=("INBOX",), min_length=1)
    trusted_authserv_ids: tuple[str, ...] = Field(default=(), description="receiving servers whose "
                                                  "Authentication-Results may mark a sender's email verified")

    @model_validator(mode="after")
    def _one_credential(self) -> ImapAccountConfig:
        if (self.password is None) == (self.oauth2_token is None):
            raise ValueError(f"imap account {self.username}@{self.host}: set exactly one of password, oauth2_token")
        return self

    @property
    def account(self) -> str:
        return self.name or self.username

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "ssl" else 143)


class ImapConfig(_Frozen):
    enabled: bool = False
    accounts: tuple[ImapAccountConfig, ...] = ()
    idle_timeout_s: float = Field(default=600.0, gt=0, le=1500, description="IDLE is renewed after this "
                                  "(RFC 2177: servers may drop an IDLE after 29 minutes)")
    poll_interval_s: float = Field(default=30.0, gt=0, description="when the server has no IDLE")
    fetch_batch: int = Field(default=100, ge=1, le=5000, description="UIDs per FETCH and per sink call")
    fetch_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="bytes per FETCH of bodies")
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    timeout_s: float = Field(default=120.0, gt=0, description="socket connect and read timeout")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="cap of the reconnect backoff")


# the first four carry messages; the others can be asked for (they advance the cursor, logged as skipped)
UpdateType = Literal["message", "edited_message", "channel_post", "edited_channel_post", "my_chat_member",
                     "chat_member", "callback_query", "message_reaction"]


class TelegramConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    token: SecretStr | None = Field(default=None, description="bot token from @BotFather, <bot id>:<secret>")
    base_url: str = Field(default="https://api.telegram.org/bot", description="the token is appended")
    mode: Literal["polling", "webhook"] = "polling"
    account: str = Field(default="telegram", min_length=1, description="envelope account, e.g. telegram:@shop_bot")
    # a support intake wants what customers write and what they correct; channel posts are the
    # business's own broadcasts, so they are opt-in
    allowed_updates: tuple[UpdateType, ...] = ("message", "edited_message")
    poll_timeout_s: int = Field(default=30, ge=0, le=600, description="long-polling wait per getUpdates")
    batch_limit: int = Field(default=100, ge=1, le=100, description="getUpdates limit (Telegram's max is 100)")
    request_timeout_s: float = Field(default=10.0, gt=0,
                                     description="HTTP read timeout; getUpdates gets poll_timeout_s on top")
    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    webhook_url: str | None = Field(default=None, description="public HTTPS URL to register with setWebhook")
    webhook_secret: SecretStr | None = Field(default=None, description="X-Telegram-Bot-Api-Secret-Token")

    @model_validator(mode="after")
    def _check(self) -> TelegramConfig:
        if self.token is None:
            if self.enabled:
                raise ValueError("token: required when the telegram connector is enabled")
        else:
            bot_id, _, secret = self.token.get_secret_value().partition(":")
            if not (bot_id.isdigit() and secret):
                raise ValueError("token: expected <bot id>:<secret> as @BotFather gives it")
        if self.enabled and self.mode == "webhook" and self.webhook_secret is None:
            raise ValueError("webhook_secret: required in webhook mode (Telegram sends it in every request)")
        if self.webhook_secret is not None:
            value = self.webhook_secret.get_secret_value()
            if not (1 <= len(value) <= 256 and all(c.isascii() and (c.isalnum() or c in "_-") for c in value)):
                raise ValueError("webhook_secret: 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return self

    @property
    def token_value(self) -> str:
        if self.token is None:
            raise ValueError("token: not set")
        return self.token.get_secret_value()

    @property
    def bot_id(self) -> str:
        return self.token_value.split(":", 1)[0]


class TranscriptsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = True
    api_keys: tuple[SecretStr, ...] = ()
    max_body_bytes: int = Field(default=5_000_000, ge=1024)
    default_line: str = "phone"


class MastodonConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    instance_url: str = Field(default="", description="https://mastodon.example")
    access_token: SecretStr = SecretStr("")
    account: str = Field(default="mastodon", min_length=1)
    own_account_id: str = ""
    backlog: bool = Field(default=True, description="first run: every retained mention (False: the newest page)")
    poll_interval_s: float = Field(default=30.0, gt=0)
    page_limit: int = Field(default=40, ge=1, le=80)
    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _required_when_enabled(self) -> MastodonConfig:
        for key in ("instance_url", "access_token"):
            value = getattr(self, key)
            if self.enabled and not (value.get_secret_value() if isinstance(value, SecretStr) else value):
                raise ValueError(f"connectors.social_mastodon.{key} is required when the connector is enabled")
        return self


class MetaConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    account: str = Field(default="meta", min_length=1, description="envelope account for every Meta message")
    app_secret: SecretStr = SecretStr("")
    verify_token: SecretStr = SecretStr("")
    page_ids: tuple[str, ...] = Field(default=(), description="our Facebook Page ids: their messages are skipped")
    instagram_ids: tuple[str, ...] = Field(default=(), description="our Instagram account ids (and IGSIDs)")
    max_body_bytes: int = Field(default=4_194_304, ge=1024)
    remember_keys: int = Field(default=100_000, ge=0, description="accepted delivery keys kept to absorb redelivery")

    @model_validator(mode="after")
    def _secrets_when_enabled(self) -> MetaConfig:
        for key in ("app_secret", "verify_token"):
            if self.enabled and not getattr(self, key).get_secret_value():
                raise ValueError(f"connectors.social_meta.{key} is required when the connector is enabled")
        return self


class XConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    account: str = Field(default="x", min_length=1, description="envelope account, e.g. x:@shop")
    consumer_secret: SecretStr = SecretStr("")
    user_id: str = Field(default="", description="our own account's user id: its tweets and DMs are skipped")
    max_body_bytes: int = Field(default=4_194_304, ge=1024)
    remember_keys: int = Field(default=100_000, ge=0, description="accepted delivery keys kept to absorb redelivery")

    @model_validator(mode="after")
    def _required_when_enabled(self) -> XConfig:
        if self.enabled and not self.consumer_secret.get_secret_value():
            raise ValueError("connectors.social_x.consumer_secret is required when the connector is enabled")
        if self.enabled and not self.user_id:
            raise ValueError("connectors.social_x.user_id is required when the connector is enabled")
        return self


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
