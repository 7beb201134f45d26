"""Rates and medians with their 95% confidence intervals, so nobody reads a verdict into five
leads: Wilson score intervals for proportions, order-statistic intervals for medians (both from
scipy), and a flag under ``MIN_TO_JUDGE``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CONFIDENCE = 0.95
# Below this many leads a rate or median is shown with its interval but flagged "too few to
# judge": at 20 leads a Wilson interval around 50% is still about +-20 points wide.
MIN_TO_JUDGE = 20


@dataclass(frozen=True)
class Proportion:
    """``hits`` of ``count``, with its 95% Wilson score interval (None when count is 0)."""

    hits: int
    count: int
    low: float | None
    high: float | None

    @property
    def rate(self) -> float | None:
        return self.hits / self.count if self.count else None

    @property
    def judged(self) -> bool:
        return self.count >= MIN_TO_JUDGE


@dataclass(frozen=True)
class Median:
    """The median of ``count`` values with a 95% order-statistic interval.

    The interval is two of the observed values; it is None when no pair of order statistics
    covers the median with 95% confidence (fewer than 6 values).
    """

    count: int
    value: float | None
    low: float | None
    high: float | None

    @property
    def judged(self) -> bool:
        return self.count >= MIN_TO_JUDGE


def wilson(hits: int, count: int) -> Proportion:
    """``hits`` of ``count`` with its Wilson score interval (scipy's binomtest)."""
    if count == 0:
        return Proportion(hits, count, None, None)
    # Imported here: scipy.stats takes most of a second to import, and the CLI never needs it.
    from scipy.stats import binomtest

    interval = binomtest(hits, count).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return Proportion(hits, count, float(interval.low), float(interval.high))


def median_with_interval(values: Iterable[float]) -> Median:
    """The median and its distribution-free interval from the binomial (scipy's quantile_test)."""
    ordered = sorted(values)
    if not ordered:
        return Median(0, None, None, None)
    middle = statistics.median(ordered)
    from scipy.stats import quantile_test  # see ``wilson``

    # scipy-stubs 1.17 types this as a float; scipy returns a ConfidenceInterval(low, high).
    interval: Any = quantile_test(ordered, q=middle, p=0.5).confidence_interval(CONFIDENCE)
    low, high = float(interval.low), float(interval.high)
    if low != low or high != high:  # NaN: too few values for any 95% pair
        return Median(len(ordered), middle, None, None)
    return Median(len(ordered), middle, low, high)


def p90(values: Iterable[float]) -> float | None:
    """The 90th percentile, interpolating linearly between order statistics (statistics'
    ``inclusive`` method: numpy's default and Excel's PERCENTILE.INC)."""
    ordered = list(values)
    if len(ordered) < 2:
        return ordered[0] if ordered else None
    return statistics.quantiles(ordered, n=10, method="inclusive")[8]
