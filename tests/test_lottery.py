"""Lottery tickets: rates and remaining fractions, rewinding, masks kept through training, controls at the
same sparsity, determinism, JSON round trip, stop and resume. Small runs on digits·mlp (2 epochs per round)."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.metrics import jaccard_score
from torch.nn.utils import prune as torch_prune

from compress_core.baselines import get_baseline
from compress_core.lottery import (
    LotteryConfig,
    LotteryRun,
    check,
    expected_remaining,
    jaccard,
    rate_for_target,
    rewound,
    run_lottery,
    run_seeds,
    summarize,
    verdict,
)
from compress_core.models import weighted_layers
from compress_core.train import TrainConfig

TRAIN = TrainConfig(epochs=2, lr=2e-3, batch_size=64, eval_every=10, rewind_iteration=7)
CFG = LotteryConfig(dataset="digits", model="mlp", rounds=3, rate=0.2,
                    controls=("reinit", "random_mask", "oneshot"), train=TRAIN, seed=0)


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("lottery-cache")


@pytest.fixture(scope="session")
def run(cache):
    return run_lottery(CFG, cache_dir=cache)


def test_rate_for_target_is_the_papers_formula():
    for r, n in ((0.1, 10), (0.036, 15), (0.5, 1)):
        p = rate_for_target(r, n)
        assert (1 - p) ** n == pytest.approx(r, rel=1e-12)
    assert rate_for_target(0.1, 10) == pytest.approx(1 - 0.1 ** 0.1)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        rate_for_target(0.0, 5)


@pytest.mark.parametrize("kw, words", [(dict(rounds=0), "at least 1"), (dict(rate=0.0), "strictly between"),
                                       (dict(rate=1.0), "strictly between"), (dict(scope="tree"), "scope"),
                                       (dict(rewind="late"), "rewind"), (dict(controls=("magic",)), "unknown control"),
                                       (dict(rewind="early", rewind_iteration=0), "at least 1")])
def test_bad_settings_are_refused_in_plain_words(kw, words):
    with pytest.raises(ValueError, match=words):
        replace(CFG, **kw)


def test_rewind_past_the_end_of_training_is_refused():
    steps = 2 * -(-1257 // 64)  # two epochs of digits' 1,257 training images
    with pytest.raises(ValueError, match="past the end of training"):
        check(replace(CFG, rewind="early", rewind_iteration=steps))
    check(replace(CFG, rewind="early", rewind_iteration=steps - 1))


def test_config_is_canonical_and_round_trips():
    a = replace(CFG, controls=("oneshot", "reinit"), rewind_iteration=33)  # θ0 rewinding ignores k
    assert a.controls == ("reinit", "oneshot") and a.rewind_iteration == 0
    assert LotteryConfig.from_dict(a.to_dict()) == a and hash(a) == hash(LotteryConfig.from_dict(a.to_dict()))
    assert a.hash() == replace(CFG, controls=("reinit", "oneshot")).hash() != CFG.hash()


def test_remaining_fractions_per_round_follow_the_rate(run):
    sizes = {n: m.weight.numel() for n, m in weighted_layers(get_baseline("digits", "mlp", 0, TRAIN).model)}
    expected = expected_remaining(CFG, sizes)
    assert [round(e["fc1"] / sizes["fc1"], 4) for e in expected] == [1.0, 0.8, 0.64, 0.512]
    for r, rnd in enumerate(run.rounds, start=1):
        kept = {k[:-7]: int(v.sum()) for k, v in run.masks[r - 1]["ticket"].items()}
        assert kept == expected[r]
        assert rnd["ticket"].remaining == pytest.approx(sum(kept.values()) / sum(sizes.values()))
    # the output layer loses half the rate: 1 − (1 − 0.1)^r of it
    assert expected[3]["fc3"] == 1000 - 100 - 90 - 81


def test_ticket_masks_are_nested_and_overlap_is_jaccard(run):
    for r in range(1, run.rounds_done + 1):
        now, before = run.mask(r), run.mask(r - 1)
        assert all(bool((now[k] <= before[k]).all()) for k in now)  # pruned weights stay pruned
        a = np.concatenate([now[k].numpy().ravel() for k in now])
        b = np.concatenate([before[k].numpy().ravel() for k in now])
        assert run.rounds[r - 1]["ticket"].overlap_prev == pytest.approx(jaccard_score(b, a))
        assert jaccard(now, before) == pytest.approx(a.sum() / b.sum())


def test_controls_use_the_same_sparsity_per_layer(run):
    for masks in run.masks:
        kept = {arm: {k: int(v.sum()) for k, v in m.items()} for arm, m in masks.items()}
        assert kept["random_mask"] == kept["ticket"] == kept["oneshot"]
        assert jaccard(masks["random_mask"], masks["ticket"]) < 0.95  # but elsewhere
    for rnd in run.rounds:
        assert len({round(a.remaining, 12) for a in rnd.values()}) == 1


def test_first_ticket_mask_is_torch_l1_pruning_of_the_dense_network(run):
    dense = get_baseline("digits", "mlp", 0, TRAIN).model
    for name, module in weighted_layers(dense):
        amount = 0.1 if name == "fc3" else 0.2
        torch_prune.l1_unstructured(module, "weight", amount=amount)
        assert torch.equal(module.weight_mask.bool(), run.mask(1)[f"{name}.weight"])
    # one-shot pruning to round 1's sparsity is the same mask
    assert all(torch.equal(run.masks[0]["oneshot"][k], run.masks[0]["ticket"][k]) for k in run.masks[0]["ticket"])


@pytest.mark.parametrize("rewind, k", [("init", 0), ("early", 7)])
def test_rewinding_restores_the_rewind_point_on_surviving_weights(run, rewind, k):
    cfg = replace(CFG, rewind=rewind, rewind_iteration=k)
    base = get_baseline("digits", "mlp", 0, replace(TRAIN, rewind_iteration=7))
    target = base.init_state if rewind == "init" else base.rewind_state
    mask = run.mask(2)
    model = rewound(cfg, base, {n: m.float() for n, m in mask.items()})
    state = model.state_dict()
    for name, t in target.items():
        m = mask.get(name)
        expect = t * m if m is not None else t
        assert torch.equal(state[name], expect)
    if rewind == "early":  # θk is not θ0: training moved it
        assert not torch.equal(base.rewind_state["fc1.weight"], base.init_state["fc1.weight"])


def test_pruned_weights_stay_zero_through_training(run):
    trained = run.resume_state  # the last ticket after its training
    mask = run.mask(run.rounds_done)
    for name, m in mask.items():
        w = trained[name]
        assert bool((w[~m] == 0).all())
        assert int((w[m] != 0).sum()) == int(m.sum())  # the survivors did train


def test_results_round_trip_through_json(run):
    back = LotteryRun.from_json(run.to_json())
    assert back == run and back.config == CFG
    assert back.rounds[1]["reinit"].records == run.rounds[1]["reinit"].records


def test_same_seed_same_numbers_other_seed_other_numbers(run, tmp_path):
    again = run_lottery(replace(CFG, rounds=1), use_cache=False)
    assert again.rounds == run.rounds[:1] and again.dense == run.dense
    assert all(torch.equal(again.masks[0][a][k], run.masks[0][a][k]) for a in again.masks[0] for k in run.masks[0][a])
    other = run_lottery(replace(CFG, rounds=1, seed=1, controls=()), use_cache=False)
    assert other.dense.records != run.dense.records
    assert not torch.equal(other.mask(1)["fc1.weight"], run.mask(1)["fc1.weight"])


def test_stop_mid_round_keeps_finished_rounds_and_resume_matches(run, tmp_path):
    seen = []

    def stop_in_round_2(event):
        seen.append(event)

    cfg = replace(CFG)
    stopped = run_lottery(cfg, cache_dir=tmp_path, progress=stop_in_round_2,
                          should_stop=lambda: bool(seen) and seen[-1].round == 2 and seen[-1].arm == "reinit")
    assert stopped.stopped and stopped.rounds_done == 1 and stopped.rounds == run.rounds[:1]
    assert all(0 <= e.fraction <= 1 for e in seen) and seen[-1].eta_s is not None and "round 2/3" in seen[-1].message
    resumed = run_lottery(cfg, cache_dir=tmp_path)  # continues from round 2, from the cache
    assert not resumed.stopped and resumed == run
    events = []
    cached = run_lottery(cfg, cache_dir=tmp_path, progress=events.append)  # complete: instant, nothing trains
    assert cached == run and not events


def test_global_scope_and_multi_seed_summary(tmp_path):
    cfg = replace(CFG, rounds=2, scope="global", controls=("random_mask",))
    runs = run_seeds(cfg, seeds=(0, 1), cache_dir=tmp_path)
    sizes = {k[:-7]: v.numel() for k, v in runs[0].masks[0]["ticket"].items()}
    expected = expected_remaining(cfg, sizes)
    for run in runs:
        for r in (1, 2):
            m = run.mask(r)
            assert int(m["fc1.weight"].sum() + m["fc2.weight"].sum()) == expected[r]["pool"]
            assert int(m["fc3.weight"].sum()) == expected[r]["fc3"]
            assert {k: int(v.sum()) for k, v in run.mask(r, "random_mask").items()} == \
                {k: int(v.sum()) for k, v in m.items()}
    rows = summarize(runs)
    t2 = next(r for r in rows if r["round"] == 2 and r["arm"] == "ticket")
    accs = [run.rounds[1]["ticket"].final_acc * 100 for run in runs]
    assert t2["seeds"] == 2 and t2["acc_mean"] == pytest.approx(np.mean(accs))
    assert t2["acc_std"] == pytest.approx(np.std(accs))
    v = verdict(runs)
    assert f"{v.dense_acc:.1f} %" in v.text and "random mask" in v.text
    # a ticket matches unless it is measurably worse than the dense network (beyond 2 s.e., both seeds agreeing)
    assert v.n_test == 360 and v.seeds == 2 and len(v.vs_dense.per_seed) == 2
    assert (v.matched_round is None) == (v.vs_dense.outcome == "worse")
    hit = v.matched_round or next(r["round"] for r in rows if r["arm"] == "ticket" and r["acc_mean"] == v.ticket_acc)
    per_seed = [100 * (run.rounds[hit - 1]["random_mask"].final_acc - run.rounds[hit - 1]["ticket"].final_acc)
                for run in runs]
    assert v.comparisons["random_mask"].per_seed == pytest.approx(per_seed)
    assert v.comparisons["random_mask"].diff == pytest.approx(np.mean(per_seed))
    assert "standard error" in v.note and "agree in sign" in v.note


def test_verdict_needs_a_finished_round(run):
    with pytest.raises(ValueError, match="No finished pruning round"):
        verdict([replace(run, rounds=(), masks=())])
    with pytest.raises(ValueError, match="Unknown accuracy measure"):
        summarize([run], measure="median")


def test_late_rewinding_run_trains_from_theta_k(run):
    early = run_lottery(replace(CFG, rounds=1, rewind="early", rewind_iteration=7, controls=("oneshot",)),
                        use_cache=False)
    assert early.dense.records == run.dense.records  # the same dense training, θk kept at iteration 7
    assert early.masks[0]["ticket"].keys() == run.masks[0]["ticket"].keys()
    assert all(torch.equal(early.masks[0]["ticket"][k], run.masks[0]["ticket"][k]) for k in run.masks[0]["ticket"])
    assert early.rounds[0]["ticket"].records != run.rounds[0]["ticket"].records  # but it starts from θk, not θ0


def test_overlap_matrix_is_pairwise_jaccard():
    from compress_core.lottery import jaccard, overlap_matrix

    a = {"fc1.weight": torch.tensor([1.0, 1.0, 0.0, 0.0])}
    b = {"fc1.weight": torch.tensor([1.0, 0.0, 1.0, 0.0])}
    m = overlap_matrix([a, b])
    assert m == [[1.0, jaccard(a, b)], [jaccard(b, a), 1.0]] and m[0][1] == 1 / 3


def test_late_rewinding_trains_t_minus_k_and_counts_iterations_from_the_start():
    from compress_core.lottery.imp import start_iteration, total_iterations

    cfg = replace(CFG, rounds=1, rewind="early", rewind_iteration=7)
    T = total_iterations(cfg)
    assert T == 40  # digits: 1,257 training images, batches of 64 -> 20 per epoch, 2 epochs
    run = run_lottery(cfg, use_cache=False)
    arms = run.rounds[0]
    assert run.dense.iterations == T
    for arm in ("ticket", "random_mask", "oneshot"):  # rewound to θk: T − k steps, on iterations k+1..T
        assert start_iteration(cfg, arm) == 7
        assert arms[arm].iterations == T - 7
        assert [r["iteration"] for r in arms[arm].records] == [10, 20, 30, 40]
        assert 7 < arms[arm].early_stop_iteration <= T
    assert start_iteration(cfg, "reinit") == 0 and arms["reinit"].iterations == T  # a fresh init trains from 0
    init = run_lottery(replace(cfg, rewind="init"), use_cache=False)
    assert all(start_iteration(init.config, a) == 0 and init.rounds[0][a].iterations == T for a in init.config.arms)
