r"""Statistics and reporting shared by every chapter and experiment CLI.

One place for the numbers a reader is asked to trust:

* :func:`summarize` — mean, sample standard deviation and a Student-*t*
  confidence interval over seeds (or molecules):
  :math:`\bar x \pm t_{1-\alpha/2,\,n-1}\, s/\sqrt n`.
* :func:`paired` — a paired comparison of two methods evaluated on the *same*
  seeds, molecules or test samples: the mean of the differences
  :math:`d_i = a_i - b_i` with its *t* interval, the Wilcoxon signed-rank
  *p*-value (:func:`scipy.stats.wilcoxon`) and the fraction of pairs in which
  ``a`` is lower. Pairing removes the between-seed (or between-molecule) variance
  that an unpaired comparison of two means would leave in.
* :func:`wilson` — the Wilson score interval for a rate :math:`k/n`
  (Wilson, 1927), which stays inside :math:`[0, 1]` and is sensible at
  :math:`k = 0` or :math:`k = n` where the normal ("Wald") interval collapses.
* :func:`convergence` — the check behind the ``full`` scale: doubling the
  training of a configuration changes its test metric by at most ``rtol``
  (relative).
* :func:`markdown_table`, :func:`write_csv`, :func:`read_csv` — tables as
  Markdown (for a notebook's ``display(Markdown(...))``) and CSV (for committed
  results).

Everything is NumPy/SciPy; tensors are accepted and converted. Tested against
:mod:`scipy.stats` on known cases (``tests/foundation/test_stats.py``).
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats as _st

__all__ = [
    "Summary", "Paired", "Rate", "Convergence", "summarize", "paired", "wilson",
    "convergence", "markdown_table", "write_csv", "read_csv", "fmt", "as_dict",
]


def _as_1d(values: Any, name: str) -> np.ndarray:
    """``values`` as a finite 1-D float array, or a clear error naming ``name``."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}") from err
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty; expected at least one value")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf: {x.tolist()}")
    return x


def _check_confidence(confidence: float) -> float:
    if not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(confidence)


def _t_interval(mean: float, sd: float, n: int, confidence: float) -> tuple[float, float]:
    if n < 2:
        return (float("nan"), float("nan"))
    half = _st.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return (mean - half, mean + half)


def fmt(value: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (``nan`` as an en dash)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (``ddof=1``) and a *t* interval of ``n`` values."""

    mean: float
    sd: float
    n: int
    low: float
    high: float
    confidence: float = 0.95

    def __str__(self) -> str:
        if self.n < 2:
            return f"{fmt(self.mean)} (n=1)"
        return f"{fmt(self.mean)} ± {fmt(self.sd, 2)}"

    def ci(self) -> str:
        """``[low, high]`` as text."""
        return f"[{fmt(self.low)}, {fmt(self.high)}]"


@dataclass(frozen=True)
class Paired:
    r"""A paired comparison ``a - b`` over ``n`` matched units (seeds, molecules).

    ``diff`` is the mean difference, ``low``/``high`` its *t* interval, ``p`` the
    two-sided Wilcoxon signed-rank *p*-value (``nan`` when every difference is 0 or
    ``n < 2``), ``ratio`` the ratio of means :math:`\bar a / \bar b` and
    ``frac_lower`` the fraction of units in which ``a < b``.
    """

    diff: float
    sd: float
    n: int
    low: float
    high: float
    p: float
    ratio: float
    frac_lower: float
    confidence: float = 0.95

    @property
    def resolved(self) -> bool:
        """Whether the confidence interval of the difference excludes 0."""
        return bool(self.n >= 2 and (self.low > 0 or self.high < 0))

    def verdict(self, a: str = "a", b: str = "b", lower_is_better: bool = True) -> str:
        """One phrase: which of ``a`` and ``b`` is better, or that the interval
        does not resolve them. With six or more pairs, a verdict that the
        Wilcoxon test does not confirm at the same level says so."""
        if not self.resolved:
            return f"{a} and {b} are not resolved (the interval contains 0)"
        a_lower = self.high < 0
        better = a if a_lower == lower_is_better else b
        worse = b if better == a else a
        if self.n >= 6 and not self.p < 1 - self.confidence:
            # From six pairs on, the signed-rank test can reach the level; when it
            # does not, the t interval alone carries the verdict (a borderline
            # difference, or a few outlying pairs).
            return (f"{better} is better than {worse} (t interval only; Wilcoxon "
                    f"p = {fmt(self.p, 2)})")
        return f"{better} is better than {worse}"

    def __str__(self) -> str:
        return (f"{fmt(self.diff)} [{fmt(self.low)}, {fmt(self.high)}] "
                f"(p={fmt(self.p, 2)}, n={self.n})")


@dataclass(frozen=True)
class Rate:
    """``k`` successes out of ``n`` with a Wilson interval."""

    k: int
    n: int
    low: float
    high: float
    confidence: float = 0.95

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else float("nan")

    def __str__(self) -> str:
        return f"{100 * self.rate:.1f} % [{100 * self.low:.1f}, {100 * self.high:.1f}]"


@dataclass(frozen=True)
class Convergence:
    """The change of a metric when training is doubled: ``rel_change`` is
    :math:`|m_{2\\times} - m_{1\\times}| / |m_{1\\times}|`; ``converged`` is
    ``rel_change <= rtol``."""

    short: float
    long: float
    rel_change: float
    rtol: float

    @property
    def converged(self) -> bool:
        return bool(self.rel_change <= self.rtol)

    def __str__(self) -> str:
        word = "converged" if self.converged else "NOT converged"
        return (f"{fmt(self.short)} -> {fmt(self.long)} "
                f"({100 * self.rel_change:.1f} % change, {word} at {100 * self.rtol:.0f} %)")


def summarize(values: Any, confidence: float = 0.95) -> Summary:
    """Mean ± sample standard deviation and a Student-*t* confidence interval.

    Args:
        values: one number per seed (or molecule); a sequence, array or tensor.
        confidence: the interval's coverage (default 0.95).

    With one value the standard deviation and the interval are ``nan``.
    """
    x = _as_1d(values, "values")
    confidence = _check_confidence(confidence)
    n = x.size
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else float("nan")
    low, high = _t_interval(mean, sd, n, confidence)
    return Summary(mean, sd, n, low, high, confidence)


def paired(a: Any, b: Any, confidence: float = 0.95) -> Paired:
    """A paired comparison of two methods on the same units: ``a - b``.

    Args:
        a, b: the metric of each method on the same seeds / molecules / samples,
            in the same order (equal lengths).
        confidence: the interval's coverage (default 0.95).

    Returns:
        :class:`Paired` with the mean difference, its *t* interval and the
        Wilcoxon signed-rank *p*-value (:func:`scipy.stats.wilcoxon`, two-sided).
    """
    xa, xb = _as_1d(a, "a"), _as_1d(b, "b")
    if xa.shape != xb.shape:
        raise ValueError(
            f"a and b must be paired (same length), got {xa.size} and {xb.size}")
    confidence = _check_confidence(confidence)
    d = xa - xb
    n = d.size
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    low, high = _t_interval(mean, sd, n, confidence)
    if n >= 2 and np.any(d != 0):
        p = float(_st.wilcoxon(xa, xb, alternative="two-sided").pvalue)
    else:
        p = float("nan")
    mb = float(xb.mean())
    ratio = float(xa.mean() / mb) if mb != 0 else float("nan")
    return Paired(mean, sd, n, low, high, p, ratio, float((d < 0).mean()), confidence)


def wilson(k: int, n: int, confidence: float = 0.95) -> Rate:
    r"""The Wilson score interval of a binomial rate :math:`k/n`
    (SciPy's ``binomtest(k, n).proportion_ci(method="wilson")``).

    .. math::
        \frac{\hat p + z^2/2n \pm z\sqrt{\hat p(1-\hat p)/n + z^2/4n^2}}{1 + z^2/n}

    Args:
        k: successes, ``0 <= k <= n``.
        n: trials, ``n >= 1``.
        confidence: the interval's coverage (default 0.95).
    """
    for name, v in (("k", k), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {v!r}")
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    confidence = _check_confidence(confidence)
    ci = _st.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence,
                                                     method="wilson")
    return Rate(int(k), int(n), float(ci.low), float(ci.high), confidence)


def convergence(short: Any, long: Any, rtol: float = 0.10) -> Convergence:
    """Whether doubling the training changed a metric by at most ``rtol``.

    Args:
        short: the metric (or its per-seed values, averaged) at the configured
            training length.
        long: the same at twice the training.
        rtol: the tolerated relative change (default 0.10, the ``full`` scale's rule).
    """
    s = float(_as_1d(np.atleast_1d(short), "short").mean())
    lg = float(_as_1d(np.atleast_1d(long), "long").mean())
    if not rtol > 0:
        raise ValueError(f"rtol must be positive, got {rtol!r}")
    if s == 0:
        rel = 0.0 if lg == 0 else float("inf")
    else:
        rel = abs(lg - s) / abs(s)
    return Convergence(s, lg, rel, float(rtol))


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float):
        return fmt(value, digits)
    if isinstance(value, (Summary, Paired, Rate, Convergence)):
        return str(value)
    return str(value).replace("|", "\\|")


def markdown_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None,
                   digits: int = 3) -> str:
    """A list of dicts as a Markdown pipe table (floats to ``digits`` significant
    digits; :class:`Summary` and friends by their ``str``).

    Args:
        rows: one mapping per row.
        columns: the columns in order (default: the first row's keys).
        digits: significant digits of float cells.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; a table needs at least one row")
    cols = list(columns) if columns is not None else list(rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, ""), digits) for c in cols) + " |")
    return "\n".join(lines)


def _csv_value(value: Any) -> Any:
    if isinstance(value, (Summary, Paired, Rate, Convergence)):
        raise TypeError(
            f"write_csv takes plain numbers and strings; got a {type(value).__name__} "
            f"(write its fields, e.g. dataclasses.asdict)")
    if isinstance(value, float):
        return repr(value)
    return value


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike,
              columns: Sequence[str] | None = None) -> Path:
    """Write rows (dicts) to ``path`` as CSV, atomically (a temporary file in the
    same folder, then :func:`os.replace`): a killed run never leaves half a file.
    Floats keep full precision."""
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; nothing to write")
    cols = list(columns) if columns is not None else list(rows[0].keys())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, extrasaction="raise")
            w.writeheader()
            for row in rows:
                w.writerow({c: _csv_value(row.get(c, "")) for c in cols})
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _parse(value: str) -> Any:
    if value == "":
        return None
    for conv in (int, float):
        try:
            return conv(value)
        except ValueError:
            pass
    if value in ("True", "False"):
        return value == "True"
    return value


def read_csv(path: str | os.PathLike | Any) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`write_csv` (or any header-first CSV) into a
    list of dicts, with numbers parsed. ``path`` may be a path or an
    :mod:`importlib.resources` traversable."""
    try:
        text = path.read_text() if hasattr(path, "read_text") else Path(path).read_text()
    except (OSError, FileNotFoundError) as err:
        raise FileNotFoundError(f"cannot read results file {str(path)!r}: {err}") from err
    reader = csv.DictReader(text.splitlines())
    return [{k: _parse(v) for k, v in row.items()} for row in reader]


def as_dict(obj: Summary | Paired | Rate | Convergence, prefix: str = "") -> dict[str, Any]:
    """The fields of a result dataclass as a flat dict (for CSV rows)."""
    return {prefix + k: v for k, v in asdict(obj).items()}
