"""Is a difference in accuracy real? The binomial standard error of an accuracy and the rule the app uses to
call one arm better than another (the lottery verdict, PTQ against QAT, the Compare page's ± column).

An accuracy p measured on n test examples has standard error √(p(1 − p)/n) (one test image on digits' 360 is
0.28 points). ``compare_accuracies`` calls a difference real only beyond two standard errors (and beyond the
user's tolerance, and, with several seeds, when every seed agrees in sign); otherwise it is within the noise.
``compare_paired`` applies it to two models scored on the same test examples, paired example by example, and
``compare_bits`` to a language model's bits per character, paired window by window.

Usage::

    standard_error(0.9, 360)                            # 0.0158
    compare_accuracies([0.90], [0.886], 360).outcome    # "none": +1.4 ± 2.3 points is within noise
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .data import get_spec

__all__ = ["NOISE_SE", "BitsComparison", "Comparison", "accuracy_se", "compare_accuracies", "compare_bits",
           "compare_paired", "noise_words", "standard_error", "test_unit"]


NOISE_SE = 2.0  # a difference counts as real only beyond this many standard errors
OUTCOMES = ("better", "worse", "no difference")
_ROUNDING = 1e-9  # points: 100·(0.93 − 0.90) is 3.0000000000000027, which is not beyond a 3-point tolerance


def standard_error(acc: float, n: int) -> float:
    """The binomial standard error of an accuracy measured on ``n`` examples: √(p(1 − p)/n)."""
    return math.sqrt(max(acc * (1.0 - acc), 0.0) / n) if n > 0 else float("nan")


def accuracy_se(accs: Sequence[float], n_test: int) -> float:
    """The standard error of the mean of per-seed accuracies ``accs`` (fractions), each measured on ``n_test``
    test examples, as a fraction.

    One seed: the binomial standard error √(p(1 − p)/n) (``standard_error``). k ≥ 2
    seeds: the larger of the seeds' spread, sd/√k (sample standard deviation, ddof 1), and the binomial
    standard error of the mean, √(Σ pᵢ(1 − pᵢ)/n)/k (each seed splits the data its own way, so the test-set
    noise of the mean shrinks with k), so that a few seeds agreeing by chance do not claim more precision than
    the test sets allow.
    """
    a = np.asarray(accs, dtype=float)
    binom = math.sqrt(sum(standard_error(float(p), n_test) ** 2 for p in a)) / len(a)
    if len(a) == 1:
        return binom
    return max(float(a.std(ddof=1)) / math.sqrt(len(a)), binom)


def test_unit(dataset: str | None) -> str:
    """What one test example of ``dataset`` is called: "image" for a data set of images, else "example"."""
    try:
        return "image" if dataset and get_spec(dataset).kind == "image" else "example"
    except ValueError:  # an upload that is gone
        return "example"


def noise_words(n_test: int, dataset: str | None = None) -> str:
    """What one test example is worth, e.g. "one test image is 0.28 points on digits' 360 test images"
    ("example" rather than "image" unless ``dataset`` is a data set of images)."""
    unit = test_unit(dataset)
    whose = "" if not dataset else (f"{dataset}' " if dataset.endswith("s") else f"{dataset}'s ")
    return f"one test {unit} is {100 / n_test:.2f} points on {whose}{n_test:,} test {unit}s"


def _reason(mean: float, se: float, tolerance: float, seeds_agree: bool = True) -> str:
    """Why a difference ``mean`` ± ``se`` is not real ("noise", "seeds disagree", "tolerance"), or "" if it is."""
    if abs(mean) <= NOISE_SE * se + _ROUNDING:
        return "noise"
    if not seeds_agree:
        return "seeds disagree"
    if abs(mean) <= tolerance + _ROUNDING:
        return "tolerance"
    return ""


def _words(num: str, outcome: str, reason: str, tolerance: str, better: str = "measurably better") -> str:
    """The verdict after the number ``num``: measurably better or worse, or why there is no difference."""
    if outcome == "better":
        return f"{num}: {better}"
    if outcome == "worse":
        return f"{num}: measurably worse"
    if reason == "tolerance":
        return f"{num}: no difference beyond your tolerance of {tolerance}"
    if reason == "seeds disagree":
        return f"{num}: no measurable difference (within noise: the seeds disagree in sign)"
    return f"{num}: no measurable difference (within noise)"


def _paired(a: Sequence[float], b: Sequence[float], scale: float,
            what: str) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(a, b as arrays, the mean of scale·(aᵢ − bᵢ), its standard error sd/√n) of two paired measurements."""
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_.shape != b_.shape or a_.ndim != 1 or len(a_) < 2:
        raise ValueError(f"Compare the same {what} on both sides (at least two).")
    d = scale * (a_ - b_)
    return a_, b_, float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


@dataclass(frozen=True)
class Comparison:
    """Accuracy ``a`` against accuracy ``b`` (per-seed pairs, each on ``n_test`` test examples): the mean
    difference a − b, its standard error and the outcome of ``compare_accuracies``'s rule. Points are
    percentage points."""

    a: float  # mean accuracy of the arm compared, %
    b: float  # mean accuracy of the reference, %
    a_se: float  # standard error of ``a`` (``accuracy_se``), points
    b_se: float
    diff: float  # mean over seeds of aᵢ − bᵢ, points
    se: float  # standard error of ``diff``, points
    n_test: int
    seeds: int
    per_seed: tuple[float, ...]  # aᵢ − bᵢ for each seed, points
    tolerance: float  # points
    outcome: str  # "better" (a measurably above b), "worse", or "no difference"
    reason: str  # why "no difference": "noise" (within 2 s.e.), "seeds disagree" (in sign), "tolerance"; else ""

    @property
    def real(self) -> bool:
        return self.outcome != "no difference"

    @property
    def within_noise(self) -> bool:
        return self.reason in ("noise", "seeds disagree")

    @property
    def one_example(self) -> float:
        """One test example, in points."""
        return 100 / self.n_test

    def words(self) -> str:
        """E.g. "−1.4 ± 2.3 points, 1 s.e.: no measurable difference (within noise)"."""
        num = f"{self.diff:+.1f} ± {self.se:.1f} points, 1 s.e.".replace("-", "−")
        return _words(num, self.outcome, self.reason, f"{self.tolerance:g} points")


def compare_accuracies(a: Sequence[float], b: Sequence[float], n_test: int, tolerance: float = 0.0) -> Comparison:
    """Is accuracy ``a`` really higher or lower than ``b``?

    ``a`` and ``b`` are per-seed accuracies (fractions in [0, 1]; seed i of ``a`` paired with seed i of ``b``),
    each measured on ``n_test`` test examples; ``tolerance`` is in points. The rule:

    - per seed, dᵢ = 100·(aᵢ − bᵢ) points, and its binomial standard error sᵢ = 100·√(se(aᵢ)² + se(bᵢ)²) with
      se(p) = √(p(1 − p)/n). This is conservative: both accuracies are counted on the same test examples,
      whose shared difficulty makes the true standard error of the difference smaller; it is ignored.
    - the difference is d = mean dᵢ. Its standard error: with one seed, s₁; with k ≥ 2 seeds, the standard
      error of the mean per-seed difference, sd(dᵢ)/√k (ddof 1), but never below the test-set noise of the
      mean, √(Σ sᵢ²)/k.
    - the difference is **real** when |d| > 2 standard errors (``NOISE_SE``), |d| > ``tolerance`` (both up to
      float rounding, 1e-9 points), and, with several seeds, every dᵢ has the sign of d. Then the outcome is
      "better" (d > 0) or "worse"; otherwise "no difference", with ``reason`` "noise", "seeds disagree" or
      "tolerance".

    E.g. 90.0 % against 88.6 % on 360 test images: d = 1.4, s.e. = √(1.58² + 1.68²) = 2.30 points, so
    no measurable difference; 95 % against 80 %: d = 15, s.e. = 2.40 points, better.
    """
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_.shape != b_.shape or a_.ndim != 1 or not len(a_):
        raise ValueError("Compare the same number of seeds on both sides (at least one).")
    if not n_test or n_test < 1:
        raise ValueError("The number of test examples must be at least 1.")
    k = len(a_)
    d = 100 * (a_ - b_)
    s = 100 * np.sqrt([standard_error(float(p), n_test) ** 2 + standard_error(float(q), n_test) ** 2
                       for p, q in zip(a_, b_)])
    mean = float(d.mean())
    se = float(s[0]) if k == 1 else max(float(d.std(ddof=1)) / math.sqrt(k), float(np.sqrt((s ** 2).sum())) / k)
    reason = _reason(mean, se, tolerance, k == 1 or all(np.sign(x) == np.sign(mean) for x in d))
    outcome = "no difference" if reason else ("better" if mean > 0 else "worse")
    return Comparison(a=float(a_.mean() * 100), b=float(b_.mean() * 100), a_se=100 * accuracy_se(a_, n_test),
                      b_se=100 * accuracy_se(b_, n_test), diff=mean, se=se, n_test=int(n_test), seeds=k,
                      per_seed=tuple(float(x) for x in d), tolerance=float(tolerance), outcome=outcome, reason=reason)


@dataclass(frozen=True)
class BitsComparison:
    """Bits per character ``a`` against ``b``, paired window by window on the same held-out text: the mean
    difference a − b (positive: ``a`` is worse, since lower is better), its standard error over the windows and the
    outcome of ``compare_bits``'s rule."""

    a: float  # mean bits per character of the arm compared
    b: float  # of the reference
    diff: float  # mean over windows of aᵢ − bᵢ
    se: float  # standard error of ``diff`` (the windows' own difficulty cancels in the pairing)
    windows: int
    tolerance: float  # bits per character
    outcome: str  # "better" (a measurably below b), "worse", or "no difference"
    reason: str  # why "no difference": "noise" (within 2 s.e.) or "tolerance"; else ""

    @property
    def real(self) -> bool:
        return self.outcome != "no difference"

    def words(self) -> str:
        """E.g. "+0.012 ± 0.003 bits/char, 1 s.e.: no difference beyond your tolerance of 0.05 bits/char"."""
        num = f"{self.diff:+.3f} ± {self.se:.3f} bits/char, 1 s.e.".replace("-", "−")
        return _words(num, self.outcome, self.reason, f"{self.tolerance:g} bits/char",
                      better="measurably better (fewer bits per character)")


def compare_bits(a: Sequence[float], b: Sequence[float], tolerance: float = 0.0) -> BitsComparison:
    """Is the per-window bits per character ``a`` really above or below ``b``, window i of ``a`` paired with window
    i of ``b`` (the same text)? The same rule as ``compare_accuracies``: the mean difference d = mean(aᵢ − bᵢ) is
    real when |d| > 2 standard errors of the mean paired difference, sd(aᵢ − bᵢ)/√n, and |d| > ``tolerance`` (bits
    per character); then the outcome is "worse" (d > 0: more bits) or "better"."""
    if tolerance < 0:
        raise ValueError("The tolerance is in bits per character, 0 or more.")
    a_, b_, mean, se = _paired(a, b, 1.0, "windows")
    reason = _reason(mean, se, tolerance)
    outcome = "no difference" if reason else ("worse" if mean > 0 else "better")
    return BitsComparison(a=float(a_.mean()), b=float(b_.mean()), diff=mean, se=se, windows=len(a_),
                          tolerance=float(tolerance), outcome=outcome, reason=reason)


def compare_paired(a_right: Sequence[bool], b_right: Sequence[bool], tolerance: float = 0.0) -> Comparison:
    """Accuracy of ``a`` against ``b`` measured on the **same** test examples (``a_right[i]``: did ``a`` get example
    i right), paired example by example: dᵢ = 100·(aᵢ − bᵢ) ∈ {−100, 0, 100}, the difference is their mean and its
    standard error sd(dᵢ)/√n (ddof 1). The examples both get right, or both wrong, cancel, so this is tighter than
    ``compare_accuracies``' unpaired error, which it replaces when both arms are scored on one test split (one seed).
    The rule is the same: real beyond 2 standard errors and beyond ``tolerance`` points."""
    a_, b_, mean, se = _paired(a_right, b_right, 100.0, "test examples")
    n, reason = len(a_), _reason(mean, se, tolerance)
    pa, pb = float(a_.mean()), float(b_.mean())
    return Comparison(a=100 * pa, b=100 * pb, a_se=100 * standard_error(pa, n), b_se=100 * standard_error(pb, n),
                      diff=mean, se=se, n_test=n, seeds=1, per_seed=(mean,), tolerance=float(tolerance),
                      outcome="no difference" if reason else ("better" if mean > 0 else "worse"), reason=reason)
