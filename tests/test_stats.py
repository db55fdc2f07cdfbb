from __future__ import annotations

import math

import pytest

from harness.stats.intervals import estimate, paired_differences, t_critical_95


def test_t_critical_values() -> None:
    assert t_critical_95(1) == pytest.approx(12.706)
    assert t_critical_95(2) == pytest.approx(4.303)
    assert t_critical_95(30) == pytest.approx(2.042)
    assert 1.96 < t_critical_95(100) < 2.0
    with pytest.raises(ValueError):
        t_critical_95(0)


def test_interval_of_known_data() -> None:
    # mean 10, sample sd sqrt(4/3), n 4: half width = t(3) * sd / sqrt(4)
    est = estimate([9, 11, 9, 11])
    sd = math.sqrt(4 / 3)
    assert est.median == 10
    assert est.half_width == pytest.approx(3.182 * sd / 2)
    assert est.low == pytest.approx(10 - 3.182 * sd / 2)
    assert est.significant  # 10 ± 1.84 excludes zero


def test_interval_including_zero_is_not_significant() -> None:
    est = estimate([-1.0, 0.5, 1.0])
    assert est.has_interval
    assert est.low is not None and est.low < 0 < (est.high or 0)
    assert not est.significant


def test_single_value_has_no_interval_and_is_never_significant() -> None:
    est = estimate([42.0])
    assert est.median == 42.0
    assert est.low is None and est.high is None
    assert not est.significant
    assert est.format() == "42.0"


def test_median_resists_one_outlier() -> None:
    assert estimate([5.0, 5.1, 4.9, 500.0]).median == pytest.approx(5.05)


def test_nan_values_are_dropped_and_all_nan_is_an_error() -> None:
    assert estimate([1.0, float("nan"), 3.0]).n == 2
    with pytest.raises(ValueError):
        estimate([float("nan")])


def test_paired_differences_skip_missing_rounds() -> None:
    assert paired_differences([10.0, float("nan"), 12.0], [8.0, 9.0, 9.0]) == [2.0, 3.0]
    assert paired_differences([1.0, 2.0, 3.0], [1.0]) == [0.0]
