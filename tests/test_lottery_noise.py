"""Honest comparisons: when is one accuracy really above another? The rule of ``compare_accuracies`` with
hand-computed numbers, and the lottery verdict on hand-built runs (no training)."""
import math

import pytest

from compress_core.experiments.run import standard_error
from compress_core.lottery import ArmRound, LotteryConfig, LotteryRun, verdict
from compress_core.lottery.report import comparison_rows
from compress_core.lottery.results import summarize
from compress_core.stats import accuracy_se, compare_accuracies, noise_words


def test_one_seed_within_noise_and_real():
    # 90 % against 88.6 % on 360 images: s.e. = 100·√(0.9·0.1/360 + 0.886·0.114/360) = √(1.5811² + 1.6750²)
    c = compare_accuracies([0.9], [0.886], 360)
    assert c.diff == pytest.approx(1.4) and c.se == pytest.approx(2.3034, abs=1e-4)
    assert c.a_se == pytest.approx(1.5811, abs=1e-4) and c.b_se == pytest.approx(1.6750, abs=1e-4)
    assert c.outcome == "no difference" and c.reason == "noise" and c.within_noise and not c.real
    assert c.words() == "+1.4 ± 2.3 points, 1 s.e.: no measurable difference (within noise)"
    assert (c.n_test, c.seeds, c.per_seed) == (360, 1, pytest.approx((1.4,)))
    # 95 % against 80 %: s.e. = √(1.1487² + 2.1082²) = 2.4008 points, 15 points is real
    c = compare_accuracies([0.95], [0.80], 360)
    assert c.se == pytest.approx(2.4008, abs=1e-4) and c.outcome == "better" and c.real
    assert c.words() == "+15.0 ± 2.4 points, 1 s.e.: measurably better"
    w = compare_accuracies([0.80], [0.95], 360)
    assert w.outcome == "worse" and w.diff == pytest.approx(-15.0) and w.words().startswith("−15.0 ± 2.4 points")
    # the boundary is 2 standard errors, exclusive
    assert compare_accuracies([0.5], [0.5], 100).outcome == "no difference"
    assert c.one_example == pytest.approx(100 / 360)


def test_tolerance_must_be_exceeded_too():
    # 93 % against 90 % on 10,000 examples: s.e. = √(0.0651 + 0.09)/100 = 0.394 points, so 3 points is beyond noise
    c = compare_accuracies([0.93], [0.90], 10_000, tolerance=5.0)
    assert c.se == pytest.approx(math.sqrt(0.1551), abs=1e-4)
    assert c.outcome == "no difference" and c.reason == "tolerance" and not c.within_noise
    assert "beyond your tolerance of 5 points" in c.words()
    assert compare_accuracies([0.93], [0.90], 10_000, tolerance=2.0).outcome == "better"
    assert compare_accuracies([0.93], [0.90], 10_000, tolerance=3.0).reason == "tolerance"  # not beyond it


def test_several_seeds_use_the_standard_error_of_the_mean_difference():
    # differences 2, 3, 1 points on 1,000 examples: sd/√3 = 0.577, but the test-set noise of the mean is larger:
    # √((0.9 + 1.056) + (0.736 + 0.979) + (0.819 + 0.9))/3 = √5.39/3 = 0.7739 points; 2 > 2·0.7739: real
    c = compare_accuracies([0.90, 0.92, 0.91], [0.88, 0.89, 0.90], 1000)
    assert c.per_seed == pytest.approx((2.0, 3.0, 1.0)) and c.diff == pytest.approx(2.0)
    assert c.se == pytest.approx(math.sqrt(5.39) / 3, abs=1e-6) and c.outcome == "better"
    # on a huge test set the seeds' spread dominates: 3, 0, 6 points -> sd 3, s.e. 3/√3 = 1.732; 3 < 3.46
    c = compare_accuracies([0.93, 0.90, 0.96], [0.90, 0.90, 0.90], 10**6)
    assert c.se == pytest.approx(3 / math.sqrt(3), rel=1e-6) and c.reason == "noise"
    # beyond 2 s.e., but one seed points the other way: not a real difference
    c = compare_accuracies([0.93, 0.93, 0.93, 0.93, 0.899], [0.90] * 5, 10**6)
    assert abs(c.diff) > 2 * c.se and c.reason == "seeds disagree" and c.within_noise
    assert "seeds disagree in sign" in c.words()
    with pytest.raises(ValueError, match="same number of seeds"):
        compare_accuracies([0.9, 0.8], [0.9], 360)


def test_accuracy_se_and_noise_words():
    assert accuracy_se([0.9], 360) == pytest.approx(standard_error(0.9, 360)) == pytest.approx(0.015811, abs=1e-6)
    assert accuracy_se([0.9, 0.9], 360) == pytest.approx(standard_error(0.9, 360) / math.sqrt(2))  # no spread
    assert accuracy_se([0.8, 1.0], 10**6) == pytest.approx(0.1)  # the spread: sd 0.1414 / √2
    assert noise_words(360, "digits") == "one test image is 0.28 points on digits' 360 test images"
    assert noise_words(1000, "mnist1d") == "one test example is 0.10 points on mnist1d's 1,000 test examples"
    assert noise_words(250, "moons") == "one test example is 0.40 points on moons' 250 test examples"
    assert noise_words(250) == "one test example is 0.40 points on 250 test examples"


def _arm(arm: str, acc: float, rnd: int = 1) -> ArmRound:
    return ArmRound(arm=arm, round=rnd, remaining=0.8 ** rnd, layer_remaining={}, final_acc=acc, best_acc=acc,
                    early_stop_iteration=10, early_stop_acc=acc, iterations=20, seconds=0.0)


def _run(dense: float, ticket: float, reinit: float, random_mask: float, seed: int = 0) -> LotteryRun:
    cfg = LotteryConfig(dataset="digits", model="mlp", rounds=1, controls=("reinit", "random_mask"), seed=seed)
    return LotteryRun(config=cfg, dense=_arm("dense", dense, 0),
                      rounds=({"ticket": _arm("ticket", ticket), "reinit": _arm("reinit", reinit),
                               "random_mask": _arm("random_mask", random_mask)},))


def test_verdict_no_longer_claims_differences_within_noise():
    # digits, one seed, 360 test images: the controls 1.4 points below the ticket used to read "every control did
    # worse"; that is 5 images, within 2 s.e. (2.6 points)
    v = verdict([_run(350 / 360, 351 / 360, 346 / 360, 346 / 360)])
    assert v.n_test == 360 and v.matched_round == 1  # +0.3 points on dense: no measurable difference, a match
    assert v.vs_dense.outcome == "no difference" and v.vs_dense.reason == "noise"
    assert {a: c.outcome for a, c in v.comparisons.items()} == {"reinit": "no difference",
                                                                 "random_mask": "no difference"}
    assert "Every control did" not in v.text and "No control did measurably worse" in v.text
    assert "within the noise of this test set: one test image is 0.28 points on digits' 360 test images" in v.text
    assert "random re-init 96.1 % (−1.4 ± 1.3 points, 1 s.e.: no measurable difference (within noise))" in v.text
    assert "n = 360 test examples" in v.note and "2 standard errors" in v.note


def test_verdict_three_outcomes_per_comparison():
    v = verdict([_run(350 / 360, 351 / 360, 346 / 360, 324 / 360)], n_test=360)
    assert v.comparisons["random_mask"].outcome == "worse" and v.comparisons["reinit"].reason == "noise"
    assert "Only random mask did measurably worse than the ticket." in v.text
    assert "No measurable difference for random re-init." in v.text
    v = verdict([_run(0.5, 0.9, 0.5, 0.5)], n_test=360)
    assert v.vs_dense.outcome == "better" and "measurably better" in v.text
    assert "Every control did measurably worse" in v.text and "within the noise" not in v.text
    v = verdict([_run(0.5, 0.5, 0.9, 0.5)], n_test=360)
    assert "Random re-init did measurably better than the ticket." in v.text
    # a ticket measurably below the dense network does not match, unless within the user's tolerance
    low = [_run(0.95, 0.80, 0.5, 0.5)]
    assert verdict(low, n_test=360).matched_round is None and "No ticket matched" in verdict(low, n_test=360).text
    assert verdict(low, n_test=360, tolerance=16.0).matched_round == 1


def test_verdict_over_seeds_carries_the_per_seed_numbers():
    runs = [_run(0.95, 0.96, 0.90, 0.91, seed=0), _run(0.94, 0.95, 0.92, 0.90, seed=1)]
    v = verdict(runs, n_test=360)
    c = v.comparisons["reinit"]
    assert c.seeds == 2 and c.per_seed == pytest.approx((-6.0, -3.0)) and c.diff == pytest.approx(-4.5)
    assert c.se == pytest.approx(max(1.5, math.sqrt(sum(100**2 * (standard_error(a, 360) ** 2
                                                                     + standard_error(b, 360) ** 2)
                                                            for a, b in ((0.90, 0.96), (0.92, 0.95)))) / 2))
    assert "agree in sign" in v.note
    rows = comparison_rows(v)
    assert [r["comparison"] for r in rows] == ["winning ticket − dense network", "random re-init − winning ticket",
                                               "random mask − winning ticket"]
    assert rows[1]["per-seed differences"] == "−6.00, −3.00" and rows[1]["± s.e. (points)"] == c.se
    assert rows[1]["test examples"] == 360 and rows[1]["seeds"] == 2
    assert rows[0]["outcome"] == "no measurable difference (within noise)"
    srows = summarize(runs, n_test=360)
    assert srows[0]["acc_se"] == pytest.approx(100 * accuracy_se([0.95, 0.94], 360))
    assert summarize(runs)[0]["acc_se"] is None
