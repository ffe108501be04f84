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


def os_error_line(exc: OSError) -> str:
    """An OSError as `PATH: problem` (both paths of a rename or a copy), without Python's `[Errno N]`."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    problem = exc.strerror or str(exc) or type(exc).__name__
    return f"{paths}: {problem}" if paths else problem


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> NoReturn:
    """Run a CLI `main`, turning `UserError` into `error: …` on stderr with exit code 2.

    What the inputs and outputs can raise besides is mapped to one line too, exit 2: an `OSError` (an unwritable or
    impossible output folder, an unreadable input) names its path; a `UnicodeDecodeError` that no reader turned into
    a `UserError` says which bytes (readers in common/jsonl name the file and line themselves).
    """
    prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "error"
    try:
        code = main(argv)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        print(f"{prog}: error: {os_error_line(exc)}", file=sys.stderr)
        sys.exit(2)
    except UnicodeDecodeError as exc:
        print(f"{prog}: error: an input is not UTF-8 text ({exc.reason} at byte {exc.start + 1})", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
