"""Local stand-ins for remote services, speaking their real protocols over 127.0.0.1."""
