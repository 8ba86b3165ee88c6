"""The honest-comparison rule for bits per character (``stats.compare_bits``): windows paired, the mean difference
real only beyond two standard errors of it and beyond the tolerance; checked against hand-computed figures."""
import math

import numpy as np
import pytest

from compress_core.stats import compare_bits


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
