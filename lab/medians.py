"""The error of a median of a few runs: what the grid's tolerances and checks are made of.

The grid and its checks summarise each world by the median of its runs, which resists a
run the machine disturbed. Its price is a wider error than a mean's: `median_variance`
scales the runs' scatter by the sample median's efficiency for normal runs.
"""

from __future__ import annotations

import math

# A median's standard error over a mean's, for n normal runs: sqrt(1/efficiency) of the
# sample median (n = 3: 0.743, 4: 0.838, 5: 0.697), and sqrt(pi/2) for large n, which
# overstates it by up to a tenth for n = 6-8 (a wider tolerance, never a narrower one).
MEDIAN_FACTOR = {1: 1.0, 2: 1.0, 3: 1.160, 4: 1.092, 5: 1.198}


def median_variance(scatter: float, n: int) -> float:
    """The variance of the median of n runs that each scatter by `scatter`."""
    return (MEDIAN_FACTOR.get(n, math.sqrt(math.pi / 2)) * scatter) ** 2 / n
