"""The hand-written nesting scan agrees with the real nesting of any JSON document."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.jsonlimits import exceeds_depth

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(alphabet=st.sampled_from('ab[]{}"\\,:\u4e2d'), max_size=8)
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(alphabet=st.sampled_from('k[]{}"\\'), max_size=4), inner, max_size=3
        )
    ),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(documents, st.integers(min_value=0, max_value=12), st.booleans())
def test_scan_matches_the_parsed_depth(doc: Any, limit: int, ascii_only: bool) -> None:
    text = json.dumps(doc, ensure_ascii=ascii_only)
    assert exceeds_depth(text, limit) is (depth(doc) > limit)
    assert exceeds_depth(text.encode(), limit) is (depth(doc) > limit)
