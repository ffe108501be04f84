"""prompts.deeptrace.quantize and number_text: their fast paths (`round()`, plain formatting, away from halves) give
exactly the decimal half-up rule."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from hypothesis import given, settings
from hypothesis import strategies as st

from prompts.deeptrace import number_text, quantize


def _rule(value: float, decimals: int) -> float:
    try:
        exact = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return float(value)
    return float(exact) + 0.0


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


# halves and their neighbours at every decimal the answers use, and values as converters compute them
_halves = st.builds(lambda k, d, ulps: math.nextafter((k + 0.5) / 10**d, math.inf if ulps > 0 else -math.inf)
                    if ulps else (k + 0.5) / 10**d, st.integers(-10**6, 10**6), st.integers(0, 3),
                    st.integers(-1, 1))
_computed = st.builds(lambda a, b: a / b, st.integers(-10**5, 10**5), st.integers(1, 10**4))


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | _halves | _computed, st.integers(0, 4))
def test_quantize_is_the_decimal_rule(value, decimals):
    assert _same(quantize(value, decimals), _rule(value, decimals))


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12) | _halves | _computed,
       st.integers(0, 4))
def test_number_text_writes_the_decimal_rule(value, decimals):
    assert number_text(value, decimals) == f"{_rule(value, decimals):.{decimals}f}"
