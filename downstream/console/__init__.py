"""The operator console: server-rendered pages on the REST API's application (same store, same
tokens). Every value is escaped by the templates; the pages run no inline script (CSP forbids it)."""
