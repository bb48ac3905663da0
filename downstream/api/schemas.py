"""Request and response bodies of the REST API (they make its OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Status = Literal["open", "pending", "resolved", "closed", "merged"]
SettableStatus = Literal["open", "pending", "resolved", "closed"]  # `merged` is set by a customer merge only
Urgency = Literal["low", "normal", "high", "critical"]
TicketType = Literal["complaint", "suggestion", "inquiry", "praise", "spam"]
Sort = Literal["urgency", "created", "updated"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_Label = Field(default_factory=list, max_length=20, description="one or more; repeat the parameter")


class TicketQuery(_Strict):
    """Filters of the ticket list. An unknown parameter is refused (422), so a misspelt filter is not ignored."""

    status: list[Status] = _Label
    urgency: list[Urgency] = _Label
    type: list[TicketType] = _Label
    category: list[str] = _Label
    language: list[str] = _Label
    channel: list[str] = _Label
    customer_id: int | None = None
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None
    updated_after: AwareDatetime | None = None
    updated_before: AwareDatetime | None = None
    q: str | None = Field(None, min_length=2, max_length=200, description="full-text search in the subject and "
                                                                          "the message texts")
    sort: Sort = Field("urgency", description="urgency: most urgent first, then SLA due time; created / updated: "
                                              "newest first")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=500, description="`next_cursor` of the previous page")


class Ticket(BaseModel):
    number: str
    customer_id: int
    status: str
    type: str
    category: str | None
    urgency: str
    language: str
    channel: str
    subject: str | None
    message_count: int
    repeat_count: int
    sla_due_at: datetime
    created_at: datetime
    updated_at: datetime


class TicketPage(BaseModel):
    items: list[Ticket]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class Message(BaseModel):
    id: int
    channel: str
    account: str
    channel_message_id: str
    received_at: datetime
    subject: str | None
    text: str
    language: str
    language_confidence: float
    type: str
    type_confidence: float
    category: str | None
    urgency: str
    dedup_outcome: str
    dedup_reason: str
    reasons: dict[str, Any] = Field(description="`labels`: why the classifier chose the labels; `language`: "
                                                "the language decision")


class TicketDetail(Ticket):
    label_reasons: list[str] = Field(description="reasons of the message whose labels the ticket carries")
    messages: list[Message]


class StatusChange(_Strict):
    status: SettableStatus


Category = Literal["product", "delivery", "billing", "service", "misleading", "resolution_delay", "unwanted_contact",
                   "account_security", "other"]


class Relabel(_Strict):
    """An operator's labels for the ticket (those not given stay); also kept as a correction of the ticket's
    latest message, training data for the classifiers."""

    type: TicketType | None = None
    category: Category | None = Field(None, description="complaints only")
    urgency: Urgency | None = None


class Relabelled(BaseModel):
    ticket: Ticket
    event_id: str | None = Field(description="the `ticket.reclassified` event; null when the labels were already so")


class StatusChanged(BaseModel):
    ticket: Ticket
    event_id: str | None = Field(description="the outbox event written; null when the status was already so")
    changed: bool


class Identity(BaseModel):
    id: int
    kind: str
    value: str
    verified: bool
    created_at: datetime


class Customer(BaseModel):
    id: int
    display_name: str | None
    vip: bool
    created_at: datetime
    merged_into_id: int | None
    identities: list[Identity]
    open_tickets: list[str]


class MergeRequest(_Strict):
    into: int = Field(description="the customer that absorbs this one")
    reason: str = Field("merged by an operator through the API", max_length=2000)


class MergeOutcome(BaseModel):
    merge_id: int
    source: int
    target: int
    kept_ticket: str | None
    merged_ticket: str | None


class Merge(BaseModel):
    id: int
    source_customer_id: int
    target_customer_id: int
    automatic: bool
    reason: str
    created_at: datetime
    undone_at: datetime | None


class DeadLetterSummary(BaseModel):
    id: str
    stage: str
    error: str
    error_class: str
    attempts: int
    source: str
    created_at: datetime | None
    reprocessed: bool


class DeadLetterDetail(DeadLetterSummary):
    payload_text: str | None = Field(description="the original bytes as UTF-8, when they are")
    payload_base64: str


class ReprocessRequest(_Strict):
    ids: list[str] = Field(min_length=1, max_length=1000)


class Health(BaseModel):
    status: str
