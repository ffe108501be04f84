"""User errors: one clear line naming file, line and problem, and a non-zero exit — never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn


class UserError(Exception):
    """A mistake in the user's input or flags. `run_cli` prints it as one line and exits 2."""


def where(path: object, line: int | None = None) -> str:
    """`file:line` prefix for error messages (line is 1-based)."""
    return f"{path}:{line}" if line is not None else str(path)


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> NoReturn:
    """Run a CLI `main`, turning `UserError` into `error: …` on stderr with exit code 2."""
    try:
        code = main(argv)
    except UserError as exc:
        prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "error"
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
