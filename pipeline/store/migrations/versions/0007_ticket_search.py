"""one search document per ticket (tickets.search_vector), kept by triggers on messages; CJK and case folding

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = '0007'
down_revision = '0006'

# PostgreSQL only, as 0005's indexes: SQLite searches with LIKE and has nothing to keep.
#
# Why a document per ticket: 0005 searched messages through EXISTS, so "open tickets mentioning X, most urgent
# first" either walked the queue probing each ticket's messages (thousands of probes for a word in 1 % of them)
# or read every match from the messages' index and sorted. With the vector on the ticket row, one GIN index
# serves the search, a status filter is checked on the same row, and walking the order index checks a column.
#
# `intake_search_text` is applied to the messages when they are indexed and to the query when searching, so both
# sides agree:
# - lower() under the ICU root collation: the database may have LC_CTYPE=C, where lower() and the 'simple'
#   dictionary fold only ASCII ('ПРИВЕТ' would not find 'привет'); final sigma is folded to σ as well.
# - Chinese / Japanese are written without spaces, and the parser takes a run of ideographs as one word, so
#   '退款' would not be found in '我要退款'. Every ideograph or kana becomes its own word, joined by '_'
#   (a separator for the parser, not for websearch_to_tsquery): the query '退款' becomes the phrase
#   '退' <-> '款', an exact substring match of the characters. CJK punctuation becomes a space.
_CJK = r'[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]'
_CJK_PUNCTUATION = r'[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]'
_ICU = 'und-x-icu'


def _search_text_function(collation: str | None) -> str:
    folded = f'lower(t COLLATE "{collation}")' if collation else 'lower(t)'
    return f"""
CREATE FUNCTION intake_search_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT translate(regexp_replace(regexp_replace({folded}, '{_CJK_PUNCTUATION}', ' ', 'g'),
                                  '({_CJK})', '_\\1_', 'g'), 'ς', 'σ')
$$"""


# The document of some messages, oldest first.
_DOCUMENT = ("to_tsvector('simple', intake_search_text("
             "string_agg(coalesce(m.subject, '') || ' ' || m.text, ' ' ORDER BY m.id)))")

# New messages append to their ticket's document; a moved, edited or deleted message rebuilds the documents of
# the tickets it left and joined (merges move messages; rare). Statement triggers with transition tables:
# a batch of messages costs one UPDATE, not one per row.
_FUNCTIONS = [
    f"""
CREATE FUNCTION intake_ticket_search_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE tickets t SET search_vector = coalesce(t.search_vector, ''::tsvector) || d.document
  FROM (SELECT m.ticket_id, {_DOCUMENT} AS document FROM added m
        WHERE m.ticket_id IS NOT NULL GROUP BY m.ticket_id) d
  WHERE t.id = d.ticket_id;
  RETURN NULL;
END $$""",
    f"""
CREATE FUNCTION intake_ticket_search_rebuild(ticket_ids bigint[]) RETURNS void LANGUAGE sql AS $$
  UPDATE tickets t SET search_vector = (SELECT {_DOCUMENT} FROM messages m WHERE m.ticket_id = t.id)
  WHERE t.id = ANY(ticket_ids)
$$""",
    """
CREATE FUNCTION intake_ticket_search_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM intake_ticket_search_rebuild(ARRAY(
    SELECT DISTINCT x.ticket_id FROM (
      SELECT o.ticket_id, n.ticket_id AS moved_to FROM old_rows o JOIN new_rows n USING (id)
      WHERE o.ticket_id IS DISTINCT FROM n.ticket_id OR o.subject IS DISTINCT FROM n.subject
         OR o.text IS DISTINCT FROM n.text) c
    CROSS JOIN LATERAL (VALUES (c.ticket_id), (c.moved_to)) x(ticket_id)
    WHERE x.ticket_id IS NOT NULL));
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION intake_ticket_search_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM intake_ticket_search_rebuild(ARRAY(SELECT DISTINCT ticket_id FROM old_rows WHERE ticket_id IS NOT NULL));
  RETURN NULL;
END $$""",
]
_TRIGGERS = {
    "tg_messages_search_append": "AFTER INSERT ON messages REFERENCING NEW TABLE AS added "
                                 "FOR EACH STATEMENT EXECUTE FUNCTION intake_ticket_search_append()",
    "tg_messages_search_changed": "AFTER UPDATE ON messages REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
                                  "FOR EACH STATEMENT EXECUTE FUNCTION intake_ticket_search_changed()",
    "tg_messages_search_removed": "AFTER DELETE ON messages REFERENCING OLD TABLE AS old_rows "
                                  "FOR EACH STATEMENT EXECUTE FUNCTION intake_ticket_search_removed()",
}
_BACKFILL = f"""
UPDATE tickets t SET search_vector = d.document
FROM (SELECT m.ticket_id, {_DOCUMENT} AS document FROM messages m WHERE m.ticket_id IS NOT NULL
      GROUP BY m.ticket_id) d
WHERE t.id = d.ticket_id"""
_FUNCTION_NAMES = ("intake_ticket_search_append()", "intake_ticket_search_changed()",
                   "intake_ticket_search_removed()", "intake_ticket_search_rebuild(bigint[])",
                   "intake_search_text(text)")
# 0005's per-message vector and its index: no query reads them any more, and each insert paid for both.
_MESSAGE_VECTOR = ("ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
                   "(to_tsvector('simple', coalesce(subject, '') || ' ' || text)) STORED")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    icu = bind.exec_driver_sql("SELECT 1 FROM pg_collation WHERE collname = %(c)s", {"c": _ICU}).first()
    op.execute(_search_text_function(_ICU if icu else None))
    op.execute("DROP INDEX IF EXISTS ix_messages_search_vector")
    op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS search_vector")
    op.execute("ALTER TABLE tickets ADD COLUMN search_vector tsvector")
    for function in _FUNCTIONS:
        op.execute(function)
    op.execute(_BACKFILL)
    for name, definition in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {definition}")
    op.execute("CREATE INDEX ix_tickets_search_vector ON tickets USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON messages")
    for function in _FUNCTION_NAMES:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.execute("DROP INDEX IF EXISTS ix_tickets_search_vector")
    op.execute("ALTER TABLE tickets DROP COLUMN IF EXISTS search_vector")
    op.execute(_MESSAGE_VECTOR)
    op.execute("CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)")
