"""Byte-exact prompt templates (the .txt files beside this module) and named-placeholder filling.

Templates are read as bytes and decoded without newline translation, so CRLF files stay CRLF.
`fill` substitutes only the placeholders it is given: templates may contain other literal braces
(e.g. DeepfakeJudge's `{A_or_B}`), where `str.format` would raise KeyError.
"""

from __future__ import annotations

from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent


def load(name: str) -> str:
    """Template text of `prompts/<name>` (e.g. "deeptrace/question.txt"), exactly as stored."""
    return (PROMPTS_DIR / name).read_bytes().decode("utf-8")


def fill(template: str, **values: str) -> str:
    """Replace each `{key}` for the given keys; a key absent from the template is an error."""
    for key, value in values.items():
        token = "{" + key + "}"
        if token not in template:
            raise KeyError(f"placeholder {token} not in template")
        template = template.replace(token, value)
    return template
