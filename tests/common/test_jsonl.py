"""common/jsonl: orjson's speed with `json`'s results and errors, also on what orjson reads or writes differently."""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import UserError
from common.jsonl import (
    BOM,
    dumps,
    has_non_finite,
    iter_jsonl,
    loads,
    open_text,
    read_json,
    read_jsonl,
    write_jsonl,
)

TRICKY = [
    '{"a": 1, "b": [1.5, -0.0, 1e-7, "é", null, true]}',
    "18446744073709551616",  # past 64 bits: orjson would give a float
    "-9223372036854775809",
    '{"id": 123456789012345678901234567890}',
    '"a 19-digit run in a string: 1234567890123456789"',
    "NaN", "[Infinity, -Infinity]", "1e400",  # json accepts these, orjson does not
    '"\\ud800"',  # a lone surrogate
    '{"a": 1, "a": 2}',
]
BAD = ["{not json", "[1, 2", "\ufeff{}", '{"a": 1}}', ""]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("text", TRICKY)
def test_loads_is_json_loads(text):
    assert _same(loads(text), json.loads(text))


@pytest.mark.parametrize("text", BAD)
def test_loads_errors_are_json_errors(text):
    with pytest.raises(json.JSONDecodeError) as ours:
        loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert (ours.value.msg, ours.value.lineno, ours.value.colno) == (theirs.value.msg, theirs.value.lineno,
                                                                      theirs.value.colno)


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_loads_round_trips_like_json(value):
    text = json.dumps(value, ensure_ascii=False)
    assert _same(loads(text), json.loads(text))


def test_iter_jsonl_names_the_bad_line_and_skips_blank_ones(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n  \t\n[2]\n{oops\n', encoding="utf-8")
    rows = iter_jsonl(path)
    assert next(rows) == (1, {"a": 1})
    assert next(rows) == (4, [2])
    with pytest.raises(Exception, match=r"x\.jsonl:5: invalid JSON: Expecting property name enclosed in double "
                                        r"quotes \(column 2\)"):
        next(rows)


# --------------------------------------------------------------------------------------------------------------------
# dumps: compact JSON that parses back to what json.dumps gives, NaN, big integers and odd keys included


def test_dumps_is_compact_json():
    assert dumps({"a": 1, "b": [1.5, None, "é\n"], "c": {}}) == '{"a":1,"b":[1.5,null,"é\\n"],"c":{}}'


@pytest.mark.parametrize("value", [
    {"a": math.nan, "b": None},  # orjson would write null for the NaN
    [None, math.inf, -math.inf],
    {"deep": [{"x": [1.0, math.nan]}], "n": None},
    {"id": 2**64, "neg": -(2**63) - 1},  # orjson refuses integers beyond 64 bits
    {1: "a", None: "b", False: "c", 2.5: "d"},  # and keys that are not str
])
def test_dumps_writes_what_orjson_would_not_as_json_does(value):
    text = dumps(value)
    assert _same(json.loads(text), json.loads(json.dumps(value, ensure_ascii=False)))
    assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("value", [object(), {"when": datetime.date(2024, 1, 1)},
                                   [dataclasses.make_dataclass("D", [])()]])
def test_dumps_refuses_what_json_refuses(value):
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        dumps(value)


_writable = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),  # NaN, ±Infinity and big ints included
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4)),
    max_leaves=20)


def _non_finite_reference(v) -> bool:
    if isinstance(v, float):
        return not math.isfinite(v)
    if isinstance(v, dict):
        return any(map(_non_finite_reference, v.values()))
    if isinstance(v, (list, tuple)):
        return any(map(_non_finite_reference, v))
    return False


@settings(max_examples=300, deadline=None)
@given(_writable)
def test_dumps_parses_back_like_json_dumps_and_has_non_finite_finds_nan_and_infinity(value):
    """Two properties of every writable value (one generated set serves both: generating them is the cost)."""
    assert _same(json.loads(dumps(value)), json.loads(json.dumps(value, ensure_ascii=False)))
    assert has_non_finite(value) == _non_finite_reference(value)


def test_write_jsonl_round_trip(tmp_path):
    records = [{"a": 1, "é": [1.5, None]}, {"nan": math.nan}, {"big": 10**30}, [], "x"]
    path = tmp_path / "out.jsonl"
    assert write_jsonl(path, records) == 5
    assert len(path.read_text(encoding="utf-8").splitlines()) == 5
    assert all(_same(a, b) for a, b in zip(read_jsonl(path), records[:3] + records[3:], strict=True))


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n' * 3000 + b'{"a": "\xff"}\n')  # past text mode's first read-ahead
    with pytest.raises(UserError, match=r"x\.jsonl:3001: not UTF-8 text \(invalid start byte at byte 8 of the line\)"):
        list(iter_jsonl(path))


# --------------------------------------------------------------------------------------------------------------------
# Real-world files: a byte-order mark, gzip, CRLF, text that is not UTF-8


def test_bom_crlf_and_gzip_read_like_the_plain_file(tmp_path):
    plain = tmp_path / "x.jsonl"
    plain.write_bytes(b'{"a": 1}\n\n[2, "\xc3\xa9"]\n')
    want = list(iter_jsonl(plain))
    assert want == [(1, {"a": 1}), (3, [2, "é"])]
    (tmp_path / "bom.jsonl").write_bytes(BOM + plain.read_bytes())  # Windows tools write one
    (tmp_path / "crlf.jsonl").write_bytes(plain.read_bytes().replace(b"\n", b"\r\n"))
    (tmp_path / "x.jsonl.gz").write_bytes(gzip.compress(BOM + plain.read_bytes()))
    (tmp_path / "gzip-without-its-suffix.jsonl").write_bytes(gzip.compress(plain.read_bytes()))
    for name in ("bom.jsonl", "crlf.jsonl", "x.jsonl.gz", "gzip-without-its-suffix.jsonl"):
        assert list(iter_jsonl(tmp_path / name)) == want, name
    doc = tmp_path / "doc.json.gz"
    doc.write_bytes(gzip.compress(BOM + b'[{"a": 1},\n {"b": null}]'))
    assert read_json(doc) == [{"a": 1}, {"b": None}]
    with open_text(doc) as fh:
        assert fh.read().startswith('[{"a"')  # the BOM dropped


def test_gzip_errors_name_the_line_and_the_file(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\n{oops\n'))
    with pytest.raises(UserError, match=r"x\.jsonl\.gz:2: invalid JSON: Expecting property name"):
        list(iter_jsonl(path))
    path.write_bytes(gzip.compress(b'{"a": 1}\n' * 5000)[:-40])  # cut short, as an interrupted download is
    with pytest.raises(UserError, match=r"x\.jsonl\.gz: a damaged gzip file \(Compressed file ended"):
        list(iter_jsonl(path))
    with pytest.raises(UserError, match=r"x\.jsonl\.gz: a damaged gzip file"):
        read_json(path)


def test_not_utf8_and_unreadable_files_are_one_line(tmp_path):
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('[\n{"name": "café"}\n]'.encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1\.json:2: not UTF-8 text \(invalid continuation byte at byte 14 of "
                                        r"the line\)"):
        read_json(latin1)
    with pytest.raises(UserError, match=r"latin1\.json:2: not UTF-8 text"), open_text(latin1) as fh:
        fh.read()
    (tmp_path / "latin1.jsonl.gz").write_bytes(gzip.compress('{"a": 1}\n{"b": "é"}\n'.encode("latin-1")))
    with pytest.raises(UserError, match=r"latin1\.jsonl\.gz:2: not UTF-8 text"):
        list(iter_jsonl(tmp_path / "latin1.jsonl.gz"))
    with pytest.raises(UserError, match=r"nothing\.jsonl: cannot read: No such file or directory"):
        list(iter_jsonl(tmp_path / "nothing.jsonl"))
    with pytest.raises(UserError, match=r"doc\.json:3: invalid JSON: Expecting value"):
        (tmp_path / "doc.json").write_text('[\n1,\n]')
        read_json(tmp_path / "doc.json")
