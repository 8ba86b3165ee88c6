"""AppTest: every control of the Pruning page changes what it should, and bad settings give messages."""
import json

import pytest

from .conftest import gap_points, metrics, open_app, open_tab

PAGE = "app_pages/pruning.py"


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def titles(at) -> list[str]:
    return [c["layout"].get("title", {}).get("text", "") for c in charts(at)]


def hist(at) -> dict:
    return next(c for c in charts(at) if c["layout"].get("title", {}).get("text", "").startswith("Weights of"))


def test_default_view_and_sparsity_slider():
    at = open_app(PAGE)
    assert not at.exception and not at.error
    m0 = metrics(at)
    assert set(m0) >= {"Test accuracy", "Test loss", "Weights kept", "Honest size"}
    t = titles(at)
    assert "Weights of fc1" in t
    assert "Sparsity per layer" not in t  # only the open tab runs
    assert any("neurons<br>still read each pixel" in x for x in t)  # digits: connections kept per input pixel
    for tab, expected in (("Per layer", "Sparsity per layer"), ("Accuracy vs sparsity", "Accuracy vs sparsity"),
                          ("Which layers can take it?", "Sensitivity: prune one layer at a time")):
        open_tab(at, "pr_view", tab)
        assert not at.exception and not at.error, tab
        assert expected in titles(at), tab
    open_tab(at, "pr_view", "Weights and mask")
    h0 = hist(at)
    at.select_slider(key="pr_sparsity").set_value(99.0).run()
    assert not at.exception
    m1 = metrics(at)
    assert m1["Test accuracy"] != m0["Test accuracy"] and m1["Weights kept"] != m0["Weights kept"]
    assert hist(at)["data"] != h0["data"]
    assert at.query_params["pr_sparsity"] == "99.0"


def test_each_control_changes_the_result():
    at = open_tab(open_app(PAGE, query={"pr_sparsity": "80.0"}), "pr_view", "Per layer")
    seen = [metrics(at)]
    bars = [c for c in charts(at) if c["layout"]["title"]["text"] == "Sparsity per layer"][0]["data"][0]["y"]
    for key, value in (("pr_criterion", "random"), ("pr_scope", "global"), ("pr_output", 0.0),
                       ("pr_granularity", "neuron")):
        at.radio(key=key).set_value(value).run()
        assert not at.exception and not at.error, key
        seen.append(metrics(at))
        assert seen[-1] != seen[-2], key
    new_bars = [c for c in charts(at) if c["layout"]["title"]["text"] == "Sparsity per layer"][0]["data"][0]["y"]
    assert new_bars != bars and new_bars[-1] == 0.0  # output layer not pruned
    at.slider(key="pr_ft").set_value(1).run()
    assert not at.exception and metrics(at) != seen[-1]
    at.radio(key="pr_schedule").set_value("iterative").run()
    assert not at.exception
    assert any("acc after fine-tune" in df.value.columns for df in at.dataframe)  # one row per round
    at.radio(key="pr_granularity").set_value("nm").run()
    assert not at.exception
    open_tab(at, "pr_view", "Weights and mask")  # the 2:4 pattern is drawn under the chosen layer's weights
    assert not at.exception
    # 2:4 keeps half of fc1 and fc2; the output layer is still set to "not pruned": 9,600 + 15,000 + 1,000
    assert metrics(at)["Weights kept"] == "25,600"
    assert "2:4 semi-structured sparsity" in [s.value for s in at.subheader]
    # the greyed slider shows the 50 % that 2:4 applies, not the slider's earlier value (issue 28, item 5)
    assert at.select_slider(key="pr_sparsity_nm").value == 50.0 and at.select_slider(key="pr_sparsity_nm").disabled
    at.selectbox(key="pr_layer").set_value("fc2").run()
    assert not at.exception and "Weights of fc2" in titles(at) and "Mask of fc2: blue = kept" in titles(at)
    open_tab(at, "pr_view", "Does it get faster?")
    assert not at.exception
    at.button(key="pr_measure").click().run()
    timed = "Measured forward time: a batch of 512, median of 30"  # what was timed, in the title (issue 28, item 2)
    assert not at.exception and timed in titles(at)
    latency = charts(at)[titles(at).index(timed)]
    assert any(t.startswith("structured (shrunk)") for t in latency["data"][0]["y"])


def test_bad_settings_give_plain_messages():
    # global 99.9 %: a whole layer is emptied
    at = open_app(PAGE, query={"pr_sparsity": "99.9", "pr_scope": "global", "pr_granularity": "neuron"})
    assert not at.exception
    assert any("100 %" in w.value or "no neuron" in w.value or "cut" in w.value for w in at.warning)
    # a rate that rounds to nothing in small layers
    at = open_app(PAGE, query={"dataset": "moons", "model": "tiny", "pr_sparsity": "0.1", "pr_view": "Per layer"})
    assert not at.exception
    assert any("rounds to zero" in w.value or "rounds to nothing" in w.value for w in at.warning)
    assert "Pruned (" in " ".join(titles(at))  # 2-D data: decision boundaries, baseline and pruned
    # pruning the output layer away: the tiny model's 64-weight classifier at 99.9 % keeps nothing
    at = open_app(PAGE, query={"dataset": "moons", "model": "tiny", "pr_sparsity": "99.9", "pr_output": "1.0"})
    assert not at.exception and not at.error
    texts = [w.value for w in at.warning]
    assert any("output layer (fc3) has no weight left" in t for t in texts)
    assert any("fc1" in t and "100 % sparsity" in t for t in texts)
    assert metrics(at)["Test accuracy"]  # the page still measures and draws
    # a hand-edited link with impossible values falls back to defaults
    at = open_app(PAGE, query={"pr_sparsity": "150", "pr_criterion": "gradient", "pr_ft": "-3"})
    assert not at.exception
    assert at.select_slider(key="pr_sparsity").value == 90.0 and at.radio(key="pr_criterion").value == "magnitude"


def test_gradual_curves_from_the_trained_model_and_from_scratch():
    at = open_app(PAGE, {"dataset": "moons", "model": "tiny", "pr_curve_ft": "1", "pr_view": "Accuracy vs sparsity"})
    curves = next(c for c in charts(at) if c["layout"]["title"]["text"] == "Accuracy vs sparsity")
    assert not any("gradual" in t["name"] for t in curves["data"])
    at.radio(key="pr_gradual").set_value("scratch").run()
    assert not at.exception and not at.error and at.query_params["pr_gradual"] == "scratch"
    curves = next(c for c in charts(at) if c["layout"]["title"]["text"] == "Accuracy vs sparsity")
    names = [t["name"] for t in curves["data"]]
    assert {"gradual (Zhu & Gupta) while fine-tuning", "gradual (Zhu & Gupta) while training from θ0"} <= set(names)
    for t in curves["data"]:
        assert all(0 <= a <= 1 for a in t["y"]) and len(t["x"]) >= 10


def test_fine_tuned_results_show_the_dense_model_with_the_same_extra_training():
    at = open_app(PAGE, {"dataset": "moons", "model": "tiny", "pr_curve_ft": "1"})
    assert not any("Fair comparison" in i.value for i in at.info)  # no fine-tuning: nothing to control for
    at.slider(key="pr_ft").set_value(2).run()
    assert not at.exception
    fair = next(i.value for i in at.info if "Fair comparison" in i.value)
    acc = float(metrics(at)["Test accuracy"].rstrip("%"))
    dense = float(fair.split("scores **")[1].split("%")[0])
    gap = gap_points(fair)
    assert gap == pytest.approx(acc - dense, abs=0.011)


def test_curves_carry_the_control_of_their_fine_tuning():
    at = open_app(PAGE, {"dataset": "moons", "model": "tiny", "pr_curve_ft": "1", "pr_view": "Accuracy vs sparsity"})
    curves = next(c for c in charts(at) if c["layout"]["title"]["text"] == "Accuracy vs sparsity")
    assert any("dense + same fine-tuning" in a["text"] for a in curves["layout"]["annotations"])


def test_weights_kept_reads_as_removed_with_the_output_layers_rate():
    """Issue 28, item 6: "97.8 % removed" with the output layer's half rate said beside it, not "−97.8 % of 50,200"
    read as a sign; short enough not to be cut off (the longer wording ended in "…" at 1280 px)."""
    at = open_app(PAGE, {"pr_sparsity": "98.8", "pr_output": "0.5"})
    m = next(x for x in at.metric if x.label == "Weights kept")
    total = int(m.help.split(" of ")[1].split()[0].replace(",", ""))
    kept = int(m.value.replace(",", ""))
    assert m.delta == f"{1 - kept / total:.1%} removed" and not m.delta.startswith("-")
    assert any(f"{1 - kept / total:.1%} of the {total:,} weights removed in all, where the slider says 98.8%: the "
               "output layer is pruned at half the rate." in c.value for c in at.caption)


def test_the_language_model_prunes_and_is_timed_honestly():
    """The GPT on the Pruning page, single weights: bits per character, and "Does it get faster?" times token ids
    through the dense and masked models, with no structured or sparse row (the mask cuts no whole head)."""
    gpt = {"dataset": "pydoc", "model": "gpt:1x32h2"}  # a small GPT: timing it takes seconds, not half a minute
    at = open_app(PAGE, {**gpt, "pr_sparsity": "50.0"})
    assert not at.exception and not at.error
    assert {"Next character right", "Bits / char", "Weights kept"} <= set(metrics(at))
    output = at.radio(key="pr_output")  # the tied head (the embedding read back) stays dense: the setting is off
    assert output.disabled and "does not apply" in output.help
    at = open_tab(at, "pr_view", "Does it get faster?")
    assert not at.exception
    assert any("this mask cuts no whole attention head" in c.value for c in at.caption)
    at.button(key="pr_measure").click().run()
    assert not at.exception
    chart = next(c for c in at.get("plotly_chart") if "Measured forward time" in c.proto.spec)
    assert set(json.loads(chart.proto.spec)["data"][0]["y"]) == {"dense", "masked dense"}


def gpt_blocks(at) -> dict:
    return next(c for c in charts(at) if c["layout"]["title"]["text"] == "Heads and MLP neurons kept per block")


def test_the_language_model_loses_whole_heads_and_neurons():
    """Granularity offers the GPT's attention heads and MLP neurons: the metric row counts the parameters left after
    surgery, "Per layer" shows what each block keeps, and the shrunk GPT is timed beside the dense one."""
    gpt = {"dataset": "pydoc", "model": "gpt"}
    at = open_app(PAGE, {**gpt, "pr_granularity": "head", "pr_sparsity": "50.0"})
    assert not at.exception and not at.error
    radio = at.radio(key="pr_granularity")
    assert list(radio.options) == ["weights (unstructured)", "MLP neurons (structured)",
                                   "attention heads (structured)", "2:4 semi-structured"]
    m = metrics(at)
    assert {"Bits / char", "Weights kept"} <= set(m)
    # 2 of 4 heads per block: q, k, v lose half their rows, proj half its columns (8 × 96 × 48 weights per block)
    assert m["Weights kept"] == f"{2 * 12 * 96 * 96 - 2 * 4 * 96 * 48:,}"
    assert any("Parameters after surgery: 202,176** of 239,328 (-15.5%)" in c.value for c in at.caption)
    at = open_tab(at, "pr_view", "Per layer")
    heads = gpt_blocks(at)["data"]
    assert heads[0]["y"] == [0.5, 0.5] and heads[1]["y"] == [1.0, 1.0]
    at.radio(key="pr_granularity").set_value("neuron").run()  # a quarter of the MLP neurons instead
    at.select_slider(key="pr_sparsity").set_value(25.0).run()
    assert not at.exception and not at.error
    assert gpt_blocks(at)["data"][1]["text"] == ["288 of 384", "288 of 384"]
    assert any("Parameters after surgery: 202,272**" in c.value for c in at.caption)
    at.select_slider(key="pr_sparsity").set_value(99.9).run()  # every neuron asked: each block keeps its best one
    assert not at.exception and not at.error
    assert any("every block keeps at least its best-scored MLP neuron" in w.value for w in at.warning)
    at.select_slider(key="pr_sparsity").set_value(50.0).run()
    at = open_tab(at, "pr_view", "Does it get faster?")
    assert any("rebuilt without the cut heads or MLP neurons" in c.value for c in at.caption)
    at.selectbox(key="pr_batch").set_value(64).run()
    at.button(key="pr_measure").click().run()
    assert not at.exception
    chart = next(c for c in at.get("plotly_chart") if "Measured forward time" in c.proto.spec)
    assert set(json.loads(chart.proto.spec)["data"][0]["y"]) == {"dense", "masked dense", "structured (shrunk)"}
    assert any("this very mask, its heads or neurons cut out by surgery" in c.value for c in at.caption)


def test_the_language_model_scores_heads_by_activation():
    """On the GPT the criterion offers activation: it picks other heads than magnitude (a different bits per
    character at the same count), and with single weights it is refused in words, the page kept."""
    gpt = {"dataset": "pydoc", "model": "gpt", "pr_granularity": "head", "pr_sparsity": "50.0"}
    at = open_app(PAGE, gpt)
    assert list(at.radio(key="pr_criterion").options) == ["magnitude |w|", "activation (heads, neurons)", "random"]
    magnitude = metrics(at)
    at.radio(key="pr_criterion").set_value("activation").run()
    assert not at.exception and not at.error
    assert at.query_params["pr_criterion"] == "activation"
    activation = metrics(at)
    assert activation["Weights kept"] == magnitude["Weights kept"]  # 2 of 4 heads per block either way
    assert activation["Bits / char"] != magnitude["Bits / char"]
    at.radio(key="pr_granularity").set_value("weight").run()
    assert not at.exception
    assert any("activation criterion scores the GPT's whole MLP neurons" in e.value for e in at.error)
    at = open_tab(at, "pr_view", "Which layers can take it?")  # the scan ranks single weights by magnitude
    at.radio(key="pr_granularity").set_value("neuron").run()
    assert not at.exception and not at.error
