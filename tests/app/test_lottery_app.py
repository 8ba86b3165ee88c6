"""AppTest: the Lottery Ticket page runs a tiny job, shows results, refuses bad settings in plain words, and
keeps the finished rounds of a stopped run."""
import json
import time
from dataclasses import replace

import pytest

from compress_core.data import load_dataset
from compress_core.lottery import ArmRound, LotteryConfig, cache_paths, run_lottery, ticket_train_config
from compress_core.lottery.report import settings_config
from compress_core.train import TrainConfig
from ui.topics.lottery import Job

from .conftest import metrics, open_app, open_tab, table_with

PAGE = "app_pages/lottery.py"
TINY = {"dataset": "digits", "model": "mlp", "lt_rounds": "2", "lt_epochs": "1", "lt_seeds": "1"}


def _errors(at) -> str:
    return " ".join(e.value for e in at.error)


def metrics_delta(at, label: str) -> str:
    return next(m.delta for m in at.metric if m.label == label)


def test_verdict_says_which_differences_are_within_the_noise():
    """A cached run (hand-set accuracies on digits' 360 test images): the ticket +0.3 points over dense, random
    re-init 1.4 points below the ticket (both within 2 s.e.), random mask 7.5 points below (real)."""
    data = load_dataset("digits", 0)
    cfg = settings_config("digits", "mlp", 0, rounds=1, rate_percent=30, epochs=1, data=data)
    jpath, ppath = cache_paths(cfg)
    real = run_lottery(cfg, use_cache=False)

    def acc(arm: ArmRound, correct: int) -> ArmRound:
        p = correct / len(data.y_test)
        return replace(arm, final_acc=p, best_acc=p, early_stop_acc=p)

    rnd = real.rounds[0]
    fake = replace(real, dense=acc(real.dense, 350), rounds=({"ticket": acc(rnd["ticket"], 351),
                                                              "reinit": acc(rnd["reinit"], 346),
                                                              "random_mask": acc(rnd["random_mask"], 324)},))
    jpath.parent.mkdir(parents=True, exist_ok=True)
    jpath.write_text(fake.to_json())
    ppath.unlink(missing_ok=True)
    try:
        at = open_app(PAGE, {"dataset": "digits", "model": "mlp", "lt_rounds": "1", "lt_rate": "30",
                             "lt_epochs": "1", "lt_seeds": "1"})
        assert not at.exception and not at.error
        text = next(s.value for s in at.success)
        assert "against 97.2 % for the dense network (+0.3 ± 1.2 points, 1 s.e.: no measurable difference " \
               "(within noise))" in text
        assert "random re-init 96.1 % (−1.4 ± 1.3 points, 1 s.e.: no measurable difference (within noise))" in text
        assert "random mask 90.0 % (−7.5 ± 1.8 points, 1 s.e.: measurably worse)" in text
        assert "Only random mask did measurably worse than the ticket." in text and "Every control" not in text
        assert "within the noise of this test set: one test image is 0.28 points on digits' 360 test images" in text
        compare = table_with(at, "comparison")
        assert list(compare["outcome"]) == ["no measurable difference (within noise)"] * 2 + ["random mask: worse"]
        assert compare["per-seed differences"][2] == "−7.50"
        assert metrics_delta(at, "Ticket there") == "+0.3 ± 1.2 points"
        assert "± 0.9 points (1 s.e., 360 test examples)" in next(m.help for m in at.metric
                                                                  if m.label == "Dense accuracy")
    finally:
        jpath.unlink(missing_ok=True)


def test_tiny_run_shows_results_and_link_state():
    at = open_app(PAGE, TINY)
    assert not at.exception and not at.error
    at.button(key="lt_run").click().run()
    assert not at.exception and not at.error
    m = metrics(at)
    assert m["Dense accuracy"].endswith("%") and "left" in (m.get("Sparsest match") or m["Best ticket"])
    assert any("dense network" in s.value for s in list(at.success) + list(at.warning))  # the computed verdict
    assert at.slider(key="lt_round").max == 2 and at.slider(key="lt_round").value == 2
    at.slider(key="lt_round").set_value(1).run()  # the mask fragment reruns with round 1
    assert not at.exception and at.query_params["lt_round"] == "1"
    assert at.query_params["lt_rounds"] == "2" and at.query_params["lt_epochs"] == "1"
    shown = {c.key for c in at.get("plotly_chart")}
    assert {"lt_acc_fig", "lt_es_fig", "lt_inputs", "lt_tiles", "lt_curves"} <= shown  # the first-layer tab is open
    for label, key in (("Every layer", "lt_layers"), ("Overlap between masks", "lt_overlap")):  # the others, lazily
        open_tab(at, "lt_mask_view", label)
        assert not at.exception and key in {c.key for c in at.get("plotly_chart")} and "lt_inputs" not in {
            c.key for c in at.get("plotly_chart")}
    table = table_with(at, "round")
    assert list(table["round"]) == [0, 1, 1, 1, 2, 2, 2] and "± s.e. (points)" in table.columns
    # the verdict's comparisons, each with its standard error, and how it is computed
    compare = table_with(at, "comparison")
    assert list(compare["comparison"]) == ["winning ticket − dense network", "random re-init − winning ticket",
                                           "random mask − winning ticket"]
    assert (compare["test examples"] == 360).all() and (compare["± s.e. (points)"] > 0).all()
    assert any("one standard error" in c.value and "n = 360 test examples" in c.value for c in at.caption)
    assert " ± " in metrics_delta(at, "Ticket there")
    at.radio(key="lt_measure").set_value("early_stop_acc").run()
    assert not at.exception


@pytest.mark.parametrize("query, words", [
    ({"lt_rounds": "0"}, "at least 1"),
    ({"lt_rate": "0"}, "strictly between 0 and 1"),
    ({"lt_rate": "100"}, "strictly between 0 and 1"),
    ({"lt_rewind": "early", "lt_k": "5000"}, "past the end of training"),
    ({"lt_mode": "target", "lt_target": "0"}, "strictly between 0 and 1"),
])
def test_bad_settings_give_a_plain_message(query, words):
    at = open_app(PAGE, {**TINY, **query})
    assert not at.exception
    assert words in _errors(at)
    assert at.button(key="lt_run").disabled


def test_stop_mid_round_keeps_finished_rounds():
    cfg = LotteryConfig(dataset="digits", model="mlp", rounds=3, rate=0.2, controls=("reinit", "random_mask"),
                        train=TrainConfig(**{**ticket_train_config("digits", "mlp").to_dict(), "epochs": 1}), seed=0)
    for p in cache_paths(cfg):
        p.unlink(missing_ok=True)
    job = Job(cfg, [0])

    def progress(p):  # press "stop" as soon as round 2 starts training
        job.progress = p
        if p.round == 2:
            job.stop.set()

    job._on_progress = progress
    job.start()
    end = time.time() + 60
    while not job.done and time.time() < end:
        time.sleep(0.1)
    assert job.done and not job.error and job.runs[0].stopped and job.runs[0].rounds_done == 1
    at = open_app(PAGE, {**TINY, "lt_rounds": "3"})
    at.session_state["lt_job"] = job
    at.run()
    assert not at.exception and not at.error
    assert any("Stopped" in w.value and "1 finished round" in w.value for w in at.warning)
    assert at.slider(key="lt_round").max == 1  # the finished round is shown
    assert not at.button(key="lt_run").disabled  # and Run resumes


@pytest.mark.parametrize("dataset, model, axis", [("mnist1d", "mlp", "time step"), ("digits", "cnn", None),
                                                  ("moons", "tiny", "input")])
def test_other_models_and_data_kinds(dataset, model, axis):
    """MNIST-1D masks run along the sequence; a convolution shows kernel tiles; 2-D points a bar per input."""
    at = open_app(PAGE, {"dataset": dataset, "model": model, "lt_rounds": "1", "lt_epochs": "1", "lt_seeds": "1",
                         "lt_random_mask": "0"})
    at.button(key="lt_run").click().run()
    assert not at.exception and not at.error
    assert "Dense accuracy" in metrics(at)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) >= 5  # accuracy, early stop, the first layer's (one tile chart for a convolution), curves, paper
    titles = [c["layout"].get("title", {}).get("text", "") for c in charts]
    if axis:
        inputs = charts[next(i for i, t in enumerate(titles) if "connections kept per input" in t)]
        assert inputs["layout"]["xaxis"]["title"]["text"] == axis
    else:
        assert any("kernel positions" in t for t in titles)


def test_switching_the_pair_starts_from_its_recipe():
    at = open_app(PAGE, {"dataset": "digits", "model": "mlp", "lt_epochs": "3"})
    assert at.slider(key="lt_epochs").value == 3  # the link wins on arrival
    at.sidebar.selectbox(key="dataset").set_value("mnist1d").run()
    assert not at.exception
    assert at.slider(key="lt_epochs").value == ticket_train_config("mnist1d", "mlp").epochs
