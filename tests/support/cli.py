"""Run a CLI's `main` in the test process, as its script would run it: through `common.errors.run_cli`, with its own
argv[0], working directory and environment, stdout and stderr captured, the exit code returned.

A subprocess adds nothing but Python's start-up and imports (seconds per call); each CLI keeps one real subprocess
test for the contract only a process shows (one line on stderr, exit code 2). An exception other than `UserError`
is not caught here: it fails the test with its traceback, as a traceback on a subprocess's stderr would.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from common.errors import run_cli


def run_main(main: Callable[[list[str] | None], int | None], argv: list[object], *, prog: str | Path,
             cwd: str | Path | None = None, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """`main(argv)` as `python prog argv…` would run it: (returncode, stdout, stderr) like `subprocess.run`."""
    args = [str(a) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd, saved_env = sys.argv, os.getcwd(), dict(os.environ)
    try:
        sys.argv = [str(prog), *args]
        if cwd is not None:
            os.chdir(cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                run_cli(main, args)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(saved_env)
    return subprocess.CompletedProcess([str(prog), *args], code, out.getvalue(), err.getvalue())


class KeyedCli:
    """A CLI that reads OPENAI_API_KEY, run with a test key (key=True) or none, never with the caller's OPENAI_*
    settings: in the test process (`run`) or, for what only a process shows, as a real process (`run_process`)."""

    def __init__(self, main: Callable[[list[str] | None], int | None], script: Path, secret: str):
        self.main, self.script, self.secret = main, script, secret

    def environment(self, key: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
        if key:
            env["OPENAI_API_KEY"] = self.secret
        return env

    def run(self, args: list[object], cwd: str | Path, *, key: bool = True) -> subprocess.CompletedProcess:
        return run_main(self.main, args, prog=self.script, cwd=cwd, env=self.environment(key))

    def run_process(self, args: list[object], cwd: str | Path, *, key: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(self.script), *map(str, args)], cwd=cwd, env=self.environment(key),
                              capture_output=True, text=True, timeout=120)
