"""The read bodies' scalar fields: a value of the wrong JSON type is a 400, never a crash (a dict or list used to
reach a dictionary lookup and answer 500)."""

from __future__ import annotations

import pytest

from ingest import reads
from ingest.errors import InvalidRequest


@pytest.mark.parametrize("value", [{}, [], ["end_time"], 3])
def test_time_filter_of_another_type_is_invalid(value):
    with pytest.raises(InvalidRequest):
        reads.time_column(value)


@pytest.mark.parametrize("value", [{}, ["mean"], None, "median"])
def test_aggregation_of_another_type_is_invalid(value):
    with pytest.raises(InvalidRequest):
        reads.parse_aggregation(value)


def test_integral_floats_are_integers_and_booleans_are_not():
    assert reads.window_ns(5.0, "start_time_ns", None) == 5
    assert reads.page_size(100.0) == 100
    with pytest.raises(InvalidRequest):
        reads.window_ns(True, "start_time_ns", None)
    with pytest.raises(InvalidRequest):
        reads.window_ns(5.5, "start_time_ns", None)
