"""Outputs that behave like a plain `open()` / `mkdir()` and never destroy a user's files.

- Temp files and folders beside an output, created with the mode a plain open/mkdir would give (0o666 / 0o777 minus
  the umask; an existing file keeps its mode), so that renaming them into place does not leave owner-only outputs
  (`tempfile.mkstemp` / `mkdtemp` make them 0600 / 0700).
- `check_output_file`: an output path that names a folder is refused up front, before any long work.
- `write_owned_dir`: a folder of generated files (an HTML report) written next to the user's own files. The folder
  holds a manifest listing the files the tool wrote; a re-run replaces and removes only those. A non-empty folder
  without the manifest is refused, and so is a new file whose path a user's file already takes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from common.errors import UserError


def _exclusive_names(path: Path, suffix: str):
    for _ in range(100):
        yield path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
    raise FileExistsError(f"{path.parent}: cannot create a temporary name for {path.name}")


def temp_file_beside(path: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new hidden file in `path`'s folder, open for writing: (fd, its path).

    Its mode is what `open(path, "w")` would leave: `path`'s own mode if it exists, else 0o666 minus the umask.
    """
    try:
        keep = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        keep = None
    for tmp in _exclusive_names(path, suffix):
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        if keep is not None:
            os.fchmod(fd, keep)
        return fd, tmp
    raise AssertionError("unreachable")


def temp_dir_beside(path: Path, suffix: str = ".tmp") -> Path:
    """A new hidden folder in `path`'s folder, with the mode `mkdir` gives (0o777 minus the umask)."""
    for tmp in _exclusive_names(path, suffix):
        try:
            tmp.mkdir(0o777)
        except FileExistsError:
            continue
        return tmp
    raise AssertionError("unreachable")


def check_output_file(path: str | os.PathLike[str], flag: str = "", example: str | None = None) -> None:
    """Refuse an output file path that names an existing folder (before the work, not after it)."""
    path = Path(path)
    if path.is_dir():
        hint = f" (e.g. {path / example})" if example else ""
        raise UserError(f"{flag} {path}: is a directory; {flag} names the file to write{hint}" if flag
                        else f"{path}: is a directory, not a file")


# --- a folder of generated files beside the user's own ---------------------------------------------------------------


def _manifest_files(out: Path, manifest: str, flag: str) -> set[str] | None:
    """The files listed in `out`'s manifest, None without one. Entries that leave the folder are refused."""
    path = out / manifest
    if not path.is_file():
        return None
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["files"]
        files = {str(PurePosixPath(e)) for e in entries if isinstance(e, str)}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise UserError(f"{flag} {out}: its {manifest} (the list of files written there) is unreadable; "
                        f"delete the folder or choose another one") from None
    for name in files:
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts or name == manifest:
            raise UserError(f"{flag} {out}: {manifest} lists {name!r}, which is not a file inside the folder")
    return files


def check_owned_dir(out: str | os.PathLike[str], manifest: str, flag: str, owner: str) -> set[str]:
    """The files `owner` wrote in `out` before (empty for a new or empty folder); refuses anything else."""
    out = Path(out)
    if not out.exists():
        return set()
    if not out.is_dir():
        raise UserError(f"{flag} {out}: exists and is not a directory")
    files = _manifest_files(out, manifest, flag)
    if files is None:
        if any(out.iterdir()):
            raise UserError(f"{flag} {out}: is not a report directory (a non-empty folder without {manifest}, the "
                            f"list of files {owner} writes); choose a new or empty folder - nothing in it was touched")
        return set()
    return files


def _write_manifest(out: Path, manifest: str, owner: str, files: set[str]) -> None:
    target = out / manifest
    fd, tmp = temp_file_beside(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"written_by": owner, "files": sorted(files)}, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def write_owned_dir(out: str | os.PathLike[str], build: Callable[[Path], None], *, manifest: str, flag: str,
                    owner: str, last: str | None = None) -> list[str]:
    """Build the folder's files into a temp folder, then put them into `out`; returns the files written.

    A new or empty `out` is the temp folder renamed into place (atomic). An `out` written before by `owner` (it has
    the manifest) gets each file replaced atomically (`last`, e.g. index.html, after the files it refers to), then
    the files of the previous run that this one did not write removed, with the folders they leave empty; every
    other file in it is left alone. The manifest lists the old and new files while they are being swapped, so an
    interrupted run never leaves an unlisted file of its own.
    """
    out = Path(out)
    old = check_owned_dir(out, manifest, flag, owner)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_beside(out)
    try:
        build(tmp)
        new = _files_under(tmp)
        if not out.exists() or not any(out.iterdir()):
            _write_manifest(tmp, manifest, owner, new)
            os.replace(tmp, out)  # replaces an empty folder too
            return sorted(new)
        for name in sorted(new):
            if name in old:
                continue
            target, parts = out, PurePosixPath(name).parts
            for i, part in enumerate(parts):
                target = target / part
                is_last = i == len(parts) - 1
                if target.is_symlink() or (target.exists() and (is_last or not target.is_dir())):
                    raise UserError(f"{flag} {out}: {target} is not one of the files {owner} wrote there, and the "
                                    f"new report needs that path; move it away or choose another folder")
        _write_manifest(out, manifest, owner, old | new)
        for name in sorted(new, key=lambda n: n == last):
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / name, target)
        _write_manifest(out, manifest, owner, new)
        for name in sorted(old - new):
            target = out / name
            if target.is_file() and not target.is_symlink():
                target.unlink()
            parent = target.parent
            while parent != out:
                try:
                    parent.rmdir()  # only if empty: a user's file in it keeps it
                except OSError:
                    break
                parent = parent.parent
        return sorted(new)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
