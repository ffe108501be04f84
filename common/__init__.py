"""Shared core of the converters, recipes and evaluation: JSONL I/O, user errors, media probing."""
