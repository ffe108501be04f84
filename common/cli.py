"""Command-line pieces shared by the CLIs."""

from __future__ import annotations

import argparse

from common.errors import UserError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: a bad flag becomes a `UserError` (`prog: error: …`, exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see --help)")
