"""Scoring: generation parsers, metrics, the LLM judge client and the `eval/score.py` CLI (see eval/README.md)."""
