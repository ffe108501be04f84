"""common/outputs.py on real folders: atomic writes get ordinary permissions, and a folder of generated files (the HTML
report) never loses a user's file — only the files the tool listed in its manifest are replaced or removed."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from common.errors import UserError
from common.jsonl import write_json, write_jsonl
from common.outputs import check_output_file, write_owned_dir

MANIFEST = ".made.json"


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after)."""
    old = os.umask(0o022)
    yield lambda value: os.umask(value)
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_get_the_mode_a_plain_open_gives(tmp_path, umask):
    umask(0o022)
    write_json(tmp_path / "m.json", {"a": 1})
    write_jsonl(tmp_path / "p.jsonl", [{"a": 1}])
    with (tmp_path / "plain.txt").open("w"):
        pass
    assert mode(tmp_path / "m.json") == mode(tmp_path / "p.jsonl") == mode(tmp_path / "plain.txt") == 0o644
    umask(0o007)
    write_json(tmp_path / "g.json", {})
    assert mode(tmp_path / "g.json") == 0o660
    (tmp_path / "m.json").chmod(0o600)  # an existing file keeps its mode
    write_json(tmp_path / "m.json", {"a": 2})
    assert mode(tmp_path / "m.json") == 0o600 and json.loads((tmp_path / "m.json").read_text()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "m.json", "p.jsonl", "plain.txt"]


def test_an_output_file_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(UserError, match=r"--out .*/out: is a directory; --out names the file to write \(e.g. "
                                        r".*/out/metrics.json\)"):
        check_output_file(tmp_path / "out", "--out", "metrics.json")
    with pytest.raises(UserError, match="is a directory, not a file"):
        write_json(tmp_path / "out", {})
    assert list((tmp_path / "out").iterdir()) == []
    check_output_file(tmp_path / "new.json", "--out")  # a new file is fine


def builder(files: dict[str, str]):
    def build(tmp: Path) -> None:
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)
    return build


def write(out: Path, files: dict[str, str]) -> list[str]:
    return write_owned_dir(out, builder(files), manifest=MANIFEST, flag="--out", owner="the tool", last="index.html")


def listing(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_new_folder_is_renamed_into_place_with_a_manifest(tmp_path, umask):
    umask(0o022)
    out = tmp_path / "report"
    assert write(out, {"index.html": "v1", "assets/a.png": "A"}) == ["assets/a.png", "index.html"]
    assert mode(out) == 0o755 and mode(out / "assets") == 0o755 and mode(out / "index.html") == 0o644
    assert json.loads((out / MANIFEST).read_text()) == {"written_by": "the tool", "files": ["assets/a.png",
                                                                                             "index.html"]}
    (tmp_path / "empty").mkdir()  # an empty folder is taken as well
    write(tmp_path / "empty", {"index.html": "v1"})
    assert listing(tmp_path / "empty")["index.html"] == "v1"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_rerun_replaces_only_its_own_files_and_keeps_the_users(tmp_path):
    out = tmp_path / "report"
    write(out, {"index.html": "v1", "assets/a.png": "A", "assets/media/x.png": "X", "assets/media/y.png": "Y"})
    (out / "notes.txt").write_text("my notes")
    (out / "sub").mkdir()
    (out / "sub" / "data.csv").write_text("1,2\n")
    (out / "assets" / "mine.txt").write_text("kept")  # a user's file inside the report's own folder
    write(out, {"index.html": "v2", "assets/b.png": "B"})
    assert listing(out) == {MANIFEST: listing(out)[MANIFEST], "assets/b.png": "B", "assets/mine.txt": "kept",
                            "index.html": "v2", "notes.txt": "my notes", "sub/data.csv": "1,2\n"}
    assert json.loads((out / MANIFEST).read_text())["files"] == ["assets/b.png", "index.html"]
    assert not (out / "assets" / "media").exists()  # emptied by the stale files' removal
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_a_folder_the_tool_did_not_write_is_refused_untouched(tmp_path):
    """The case that deleted files: an old report's index.html with the user's notes.txt and sub/data.csv beside it."""
    out = tmp_path / "report"
    (out / "sub").mkdir(parents=True)
    before = {"index.html": "<html>old</html>", "notes.txt": "my notes", "sub/data.csv": "1,2\n"}
    for name, text in before.items():
        (out / name).write_text(text)
    with pytest.raises(UserError, match=r"--out .*/report: is not a report directory \(a non-empty folder without "
                                        r"\.made\.json, the list of files the tool writes\)"):
        write(out, {"index.html": "new"})
    assert listing(out) == before and [p.name for p in tmp_path.iterdir()] == ["report"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="exists and is not a directory"):
        write(tmp_path / "file", {"index.html": "new"})


def test_a_users_file_where_the_new_files_go_is_refused_untouched(tmp_path):
    out = tmp_path / "report"
    write(out, {"index.html": "v1"})
    (out / "assets").mkdir()
    (out / "assets" / "a.png").write_text("the user's picture")
    with pytest.raises(UserError, match=r"assets/a.png is not one of the files the tool wrote there"):
        write(out, {"index.html": "v2", "assets/a.png": "A"})
    assert listing(out)["assets/a.png"] == "the user's picture" and listing(out)["index.html"] == "v1"
    (out / "data").write_text("a user's file where the tool wants a folder")
    with pytest.raises(UserError, match=r"/data is not one of the files"):
        write(out, {"index.html": "v2", "data/x.png": "X"})
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_a_manifest_cannot_point_outside_the_folder(tmp_path):
    out = tmp_path / "report"
    write(out, {"index.html": "v1"})
    (tmp_path / "precious.txt").write_text("keep")
    (out / MANIFEST).write_text(json.dumps({"files": ["index.html", "../precious.txt"]}))
    with pytest.raises(UserError, match=r"lists '\.\./precious\.txt', which is not a file inside the folder"):
        write(out, {"index.html": "v2"})
    (out / MANIFEST).write_text("{broken")
    with pytest.raises(UserError, match="is unreadable"):
        write(out, {"index.html": "v2"})
    assert (tmp_path / "precious.txt").read_text() == "keep" and listing(out)["index.html"] == "v1"


def test_a_failed_build_changes_nothing(tmp_path):
    out = tmp_path / "report"
    write(out, {"index.html": "v1"})

    def broken(tmp: Path) -> None:
        (tmp / "index.html").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_owned_dir(out, broken, manifest=MANIFEST, flag="--out", owner="the tool")
    assert listing(out)["index.html"] == "v1" and [p.name for p in tmp_path.iterdir()] == ["report"]
