"""common/jsonl: orjson's speed with `json`'s results and errors, also on what orjson reads or writes differently."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import UserError
from common.jsonl import (
    dumps,
    has_non_finite,
    iter_jsonl,
    loads,
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


@settings(max_examples=300, deadline=None)
@given(_writable)
def test_dumps_parses_back_like_json_dumps(value):
    assert _same(json.loads(dumps(value)), json.loads(json.dumps(value, ensure_ascii=False)))


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


@settings(max_examples=300, deadline=None)
@given(_writable)
def test_has_non_finite(value):
    def reference(v) -> bool:
        if isinstance(v, float):
            return not math.isfinite(v)
        if isinstance(v, dict):
            return any(map(reference, v.values()))
        if isinstance(v, (list, tuple)):
            return any(map(reference, v))
        return False

    assert has_non_finite(value) == reference(value)
