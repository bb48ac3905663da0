"""The shared SQL store: customers, messages, tickets, the ticket-event outbox, cursors, dead letters."""
