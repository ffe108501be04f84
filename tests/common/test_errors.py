"""common/errors.run_cli: user errors, and what the file system or the text of an input raises, as one line, exit 2."""

from __future__ import annotations

import pytest

from common.errors import UserError, run_cli


def _run(main, capsys) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [])
    return exc.value.code, capsys.readouterr().err.strip().splitlines()


def test_user_error(capsys):
    def main(argv):
        raise UserError("data.jsonl:3: invalid JSON")

    code, lines = _run(main, capsys)
    assert code == 2 and len(lines) == 1 and lines[0].endswith("error: data.jsonl:3: invalid JSON")


def test_os_errors_name_their_paths(tmp_path, capsys):
    regular = tmp_path / "a_file"
    regular.write_text("x")

    def under_a_file(argv):
        (regular / "out").mkdir(parents=True)

    code, lines = _run(under_a_file, capsys)
    assert code == 2 and len(lines) == 1
    assert lines[0].endswith(f"error: {regular / 'out'}: Not a directory"), lines

    def rename(argv):
        (tmp_path / "missing").rename(tmp_path / "elsewhere")

    code, lines = _run(rename, capsys)
    assert lines == [lines[0]] and lines[0].endswith(
        f"error: {tmp_path / 'missing'} -> {tmp_path / 'elsewhere'}: No such file or directory")
    assert "Traceback" not in "\n".join(lines) and "Errno" not in lines[0]


def test_undecodable_text(capsys):
    def main(argv):
        b"caf\xe9".decode("utf-8")

    code, lines = _run(main, capsys)
    assert code == 2 and len(lines) == 1
    assert lines[0].endswith("error: an input is not UTF-8 text (unexpected end of data at byte 4)"), lines
