"""What the outside world sees of tickets: the event stream, webhooks, the REST API and the console."""
