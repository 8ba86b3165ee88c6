"""The honest-comparison rule on paired measurements: two classifiers on the same test examples
(``stats.compare_paired``) and a language model's bits per character window by window (``stats.compare_bits``); the
mean difference real only beyond two standard errors of it and beyond the tolerance; checked by hand."""
import math

import numpy as np
import pytest

from compress_core.stats import compare_accuracies, compare_bits, compare_paired


def test_paired_windows_cancel_their_own_difficulty():
    # windows of very different difficulty, the arm 0.05 bits worse on each give or take 0.01
    ref = np.array([1.0, 3.0, 2.0, 4.0, 1.5, 2.5])
    arm = ref + np.array([0.04, 0.06, 0.05, 0.05, 0.04, 0.06])
    c = compare_bits(arm, ref)
    d = arm - ref
    assert c.diff == pytest.approx(0.05) and c.se == pytest.approx(d.std(ddof=1) / math.sqrt(6))
    assert c.outcome == "worse" and c.windows == 6  # 0.05 ± 0.0037: real, though the windows' spread is 1.1 bits
    assert c.words().startswith("+0.050 ± 0.004 bits/char, 1 s.e.: measurably worse")
    assert compare_bits(ref, arm).outcome == "better"


def test_within_noise_and_within_tolerance():
    ref = np.array([2.0, 2.0, 2.0, 2.0])
    noisy = ref + np.array([0.3, -0.2, 0.25, -0.25])  # mean +0.025, s.e. 0.14: noise
    c = compare_bits(noisy, ref)
    assert c.outcome == "no difference" and c.reason == "noise" and "within noise" in c.words()
    steady = ref + np.array([0.03, 0.031, 0.029, 0.03])  # +0.03 ± 0.0004: real, but inside a 0.05 tolerance
    c = compare_bits(steady, ref, tolerance=0.05)
    assert c.outcome == "no difference" and c.reason == "tolerance"
    assert c.words().endswith("no difference beyond your tolerance of 0.05 bits/char")
    assert compare_bits(steady, ref, tolerance=0.02).outcome == "worse"


def test_bad_input_is_refused_in_words():
    with pytest.raises(ValueError, match="same windows"):
        compare_bits([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least two"):
        compare_bits([1.0], [1.0])
    with pytest.raises(ValueError, match="tolerance"):
        compare_bits([1.0, 2.0], [1.0, 2.0], tolerance=-0.1)


def test_paired_examples_cancel_what_both_get_right_or_wrong():
    # 400 examples: both right on 300, both wrong on 80, only a right on 15, only b right on 5
    a = np.array([1] * 300 + [0] * 80 + [1] * 15 + [0] * 5, dtype=bool)
    b = np.array([1] * 300 + [0] * 80 + [0] * 15 + [1] * 5, dtype=bool)
    c = compare_paired(a, b)
    d = 100 * (a.astype(float) - b.astype(float))
    assert c.diff == pytest.approx(2.5) and c.se == pytest.approx(d.std(ddof=1) / math.sqrt(400))
    assert c.a == pytest.approx(78.75) and c.b == pytest.approx(76.25) and c.n_test == 400
    assert c.outcome == "better"  # +2.5 ± 1.1 points: real when paired …
    unpaired = compare_accuracies([a.mean()], [b.mean()], 400)
    assert unpaired.outcome == "no difference" and unpaired.se > 2.5 * c.se  # … lost in noise when not
    assert compare_paired(b, a).outcome == "worse"
    assert compare_paired(a, b, tolerance=3.0).reason == "tolerance"
    same = compare_paired(a, a)
    assert same.diff == 0 and same.se == 0 and same.outcome == "no difference"
    with pytest.raises(ValueError, match="same test examples"):
        compare_paired(a, b[:10])
