"""Classifiers: language detection and the type / category / urgency labels with their reasons."""
