"""What the Lottery tickets page shows, computed by the library: the config from the controls, the plan, the
table, the masks of one round and the curves of one round."""
import pytest

from compress_core.data import load_dataset
from compress_core.lottery import (
    ARM_LABELS,
    LotteryConfig,
    overlap_matrix,
    rate_for_target,
    run_lottery,
    summarize,
    verdict,
)
from compress_core.lottery.report import (
    comparison_rows,
    mask_view,
    plan,
    round_curves,
    rounds_done,
    seeds,
    settings_config,
    table_rows,
)
from compress_core.models import build_model, weighted_layers


def test_settings_config_rate_and_target_modes():
    cfg = settings_config("digits", "mlp", 3, rounds=4, rate_percent=25, half_output=False, epochs=2,
                          controls=("oneshot", "reinit"))
    assert cfg.rate == 0.25 and cfg.output_scale == 1.0 and cfg.seed == 3 and cfg.train.epochs == 2
    assert cfg.controls == ("reinit", "oneshot")  # canonical order, whatever order the page lists them in
    t = settings_config("digits", "mlp", 0, rounds=10, mode="target", target_percent=10.0)
    assert t.rate == rate_for_target(0.1, 10) and t.output_scale == 0.5
    with pytest.raises(ValueError, match="at least 1 round"):
        settings_config("digits", "mlp", 0, rounds=0, mode="target")
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        settings_config("digits", "mlp", 0, rate_percent=100)
    with pytest.raises(ValueError, match="past the end of training"):
        settings_config("digits", "mlp", 0, rewind="early", rewind_iteration=10**5, epochs=1,
                        data=load_dataset("digits", 0))


def test_plan_and_seeds():
    p = plan(LotteryConfig(rounds=3, rate=0.2, output_scale=0.5, controls=("reinit",)))
    assert p.rate == 0.2 and p.output_rate == pytest.approx(0.1)
    assert p.remaining_percent == pytest.approx(100 * 0.8 ** 3) and p.trainings_per_seed == 2 * 3 + 1
    assert plan(LotteryConfig(output_scale=1.0)).output_rate is None
    assert seeds(4, 3) == [4, 5, 6]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cfg = settings_config("digits", "mlp", 0, rounds=2, epochs=1, controls=("reinit", "random_mask", "oneshot"))
    return run_lottery(cfg, cache_dir=tmp_path_factory.mktemp("lt"))


def test_table_rows_carry_every_summary_number(run):
    rows = summarize([run], "best_acc")
    table = table_rows(rows, "best_acc")
    assert [t["round"] for t in table] == [0, 1, 1, 1, 1, 2, 2, 2, 2] and rounds_done([run]) == 2
    assert table[0]["arm"] == ARM_LABELS["dense"] and table[0]["weights left (%)"] == pytest.approx(100)
    assert all(t["best test accuracy (chosen on the test set: optimistic) (%)"] == r["acc_mean"]
               for t, r in zip(table, rows))


def test_table_rows_show_the_standard_error_when_the_rows_have_it(run):
    plain = table_rows(summarize([run]), "final_acc")
    assert "± s.e. (points)" not in plain[0]
    rows = summarize([run], "final_acc", n_test=360)
    table = table_rows(rows, "final_acc")
    p = run.dense.final_acc
    assert table[0]["± s.e. (points)"] == pytest.approx(100 * (p * (1 - p) / 360) ** 0.5)
    assert list(table[0])[:5] == ["round", "arm", "weights left (%)", "final test accuracy (%)", "± s.e. (points)"]


def test_comparison_rows_carry_the_verdicts_numbers(run):
    v = verdict([run], tolerance=0.5)
    rows = comparison_rows(v)
    assert [r["comparison"] for r in rows] == ["winning ticket − dense network", "random re-init − winning ticket",
                                               "random mask − winning ticket", "one-shot pruning − winning ticket"]
    for r, c in zip(rows, [v.vs_dense, *v.comparisons.values()]):
        assert (r["difference (points)"], r["± s.e. (points)"], r["2 s.e. (points)"]) == (c.diff, c.se, 2 * c.se)
        assert r["test examples"] == v.n_test == 360 and r["seeds"] == 1
        assert r["outcome"] == ("no measurable difference (within noise)" if c.reason == "noise" else
                                "no difference beyond the tolerance (0.5 points)" if c.reason == "tolerance" else
                                r["comparison"].split(" − ")[0] + ": " + c.outcome)


def test_mask_view_matches_the_run(run):
    ds = load_dataset("digits", 0)
    first = weighted_layers(build_model("mlp", ds))[0][0]
    view = mask_view(run, 1, ds.input_shape, ds.kind)
    assert not view.conv and (view.first == run.mask(1)[f"{first}.weight"].numpy()).all()
    assert view.layer_remaining_by_round[0] == {n: 1.0 for n in run.dense.layer_remaining}
    assert view.layer_remaining_by_round[2] == run.rounds[1]["ticket"].layer_remaining
    assert view.overlap == overlap_matrix([run.mask(i) for i in range(3)])
    assert mask_view(run, 1, ds.input_shape, ds.kind, rounds=1).overlap == overlap_matrix([run.mask(0), run.mask(1)])
    assert set(view.control_overlap) == {"random_mask", "oneshot"}
    assert view.control_overlap["oneshot"] == [(1, run.rounds[0]["oneshot"].overlap_ticket),
                                               (2, run.rounds[1]["oneshot"].overlap_ticket)]


def test_round_curves(run):
    rc = round_curves(run, 2)
    assert list(rc.curves) == ["dense", *run.rounds[1]] and rc.remaining == run.rounds[1]["ticket"].remaining
    assert rc.curves["dense"] == list(run.dense.records)
