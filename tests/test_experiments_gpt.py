"""Compression recipes on the GPT: every step kind runs on a small sized GPT (``gpt:1x32h2``, its baseline trains in
seconds), the result reads in bits per character paired with the float baseline, the accounting covers the nested
Linears and counts embeddings and LayerNorms as float32 (checked by hand against the parameter counts), the Pareto
front minimises bits per character, and the CLI runs a GPT recipe."""
import csv
import json

import pytest

from compress_core import load_dataset
from compress_core.experiments import (
    GPT_PRESETS,
    PRESETS,
    Distill,
    FineTune,
    Prune,
    Quantize,
    Recipe,
    Result,
    Share,
    compressed,
    layer_costs,
    pareto_front,
    presets_for,
    run,
    summarize,
)
from compress_core.experiments.__main__ import main as cli_main
from compress_core.experiments.sweep import result_front
from compress_core.models import build_model

SMALL = "gpt:1x32h2"  # 1 block, 32 wide, 2 heads; vocabulary 97, context 64
LINEARS = ["block1.attn.q", "block1.attn.k", "block1.attn.v", "block1.attn.proj", "block1.mlp.fc", "block1.mlp.fc2"]


def _recipe(*steps, name=""):
    return Recipe("pydoc", SMALL, 0, steps=tuple(steps), name=name)


@pytest.fixture(scope="module")
def float_result(tmp_path_factory):
    return run(_recipe(), cache_dir=tmp_path_factory.mktemp("runs"))


def test_the_gpt_accounting_matches_its_parameter_counts_by_hand():
    ds = load_dataset("pydoc")
    net = build_model(SMALL, ds)
    rows = {r["layer"]: r for r in layer_costs(net, None, ds.input_shape)}
    # the six Linears: 4 of 32×32 (+32 bias) and 32→128, 128→32; every weight one MAC per token
    assert [k for k in rows if k.startswith("block1.") and "ln" not in k] == LINEARS
    assert rows["block1.mlp.fc"]["shape"] == "128×32" and rows["block1.mlp.fc"]["macs"] == 128 * 32
    assert rows["block1.attn.q"]["bytes"] == 4 * (32 * 32 + 32)
    # embeddings (97×32 tokens, 64×32 positions) and LayerNorms (ln1, ln2, ln_f: 32 weights + 32 biases) in float32
    assert rows["embed.tok"]["bytes"] == 4 * 97 * 32 and rows["embed.tok"]["layout"] == "float32 (embedding)"
    assert rows["embed.pos"]["bytes"] == 4 * 64 * 32
    for ln in ("block1.ln1", "block1.ln2", "ln_f"):
        assert rows[ln]["bytes"] == 4 * 64 and rows[ln]["layout"] == "float32 (LayerNorm)"
    # the tied head: no bytes, vocabulary × width MACs per token
    assert rows["head"]["bytes"] == 0 and rows["head"]["macs"] == 97 * 32
    total = summarize(list(rows.values()))
    params = sum(p.numel() for p in net.parameters())
    assert total["bytes"] == 4 * params == 4 * 17_920
    assert total["macs"] == 4 * 32 * 32 + 2 * 128 * 32 + 97 * 32
    assert total["format"] == "float32, dense + float32 embeddings and LayerNorms"


def test_a_float_gpt_recipe_reads_in_bits_per_character(float_result):
    r = float_result
    assert r.metric == "bpc" and r.is_lm and r.score == r.bpc
    assert 1.0 < r.bpc < 6.7 and 0 < r.bpc_se < 0.5  # below a uniform guess over 97 symbols (6.6 bits)
    assert r.bpc == pytest.approx(r.baseline_bpc) and r.bpc_diff == pytest.approx(0.0, abs=1e-12)
    assert r.bytes == r.float32_bytes == 4 * 17_920 and r.ratio == 1.0
    assert r.integer_acc is None and "does not apply to the GPT" in r.integer_note
    assert r.file_b64 is None and "does not apply to the GPT" in r.file_note
    assert r.latency_ms["float"] > 0
    row = r.row()
    assert row["bits / char"] == r.bpc and "test accuracy" not in row and "MACs / token" in row


STEPS = {
    "unstructured magnitude per layer": (Prune(sparsity=0.5, finetune_epochs=0),),
    "random global": (Prune(sparsity=0.5, criterion="random", scope="global", finetune_epochs=0),),
    "2:4": (Prune(granularity="nm", finetune_epochs=0),),
    "MLP neurons": (Prune(sparsity=0.5, granularity="neuron", finetune_epochs=0),),
    "heads": (Prune(sparsity=0.5, granularity="head", finetune_epochs=0),),
    "fine-tune": (Prune(sparsity=0.5, finetune_epochs=0), FineTune(epochs=1)),
    "distill": (Prune(sparsity=0.5, finetune_epochs=0), Distill(epochs=1)),
    "PTQ W8A8": (Quantize(weight_bits=8, act_bits=8),),
    "PTQ W4 weights": (Quantize(weight_bits=4, target="weights"),),
    "QAT": (Quantize(mode="qat", weight_bits=4, target="weights", qat_epochs=1),),
    "share": (Share(bits=4, centroid_epochs=1),),
}


@pytest.mark.parametrize("what", list(STEPS))
def test_every_step_kind_runs_on_the_gpt(what, float_result, tmp_path):
    r = run(_recipe(*STEPS[what]), cache_dir=tmp_path)
    assert r.metric == "bpc" and 0.5 < r.bpc < 10 and r.bpc_se > 0
    assert r.baseline_bpc == pytest.approx(float_result.bpc)
    assert r.bpc - r.baseline_bpc == pytest.approx(r.bpc_diff) and r.bpc_diff_se > 0
    assert 0 < r.bytes <= r.float32_bytes and r.macs > 0
    # the float32 rows stay: embeddings and LayerNorms
    assert {"embed.tok", "embed.pos", "ln_f", "head"} <= {row["layer"] for row in r.layers}
    if what in ("MLP neurons", "heads"):
        assert r.latency_ms["shrunk"] is not None and r.bytes < r.float32_bytes
    if what.startswith("PTQ") or what in ("QAT", "share"):
        assert r.format.startswith(("8-bit", "4-bit")) and r.bytes < r.float32_bytes
    again = Result.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again.comparable() == r.comparable()


def test_the_compressed_network_is_what_run_measured_and_a_fresh_copy_each_time():
    from compress_core.lm.variants import window_bpc

    recipe = _recipe(Prune(sparsity=0.5, finetune_epochs=0), Quantize(weight_bits=8, act_bits=8))
    res = run(recipe, use_cache=False)
    a, b = compressed(recipe), compressed(recipe)
    assert a.model is not b.model and a.baseline is not b.baseline
    assert float(window_bpc(a.model, load_dataset("pydoc")).mean()) == pytest.approx(res.bpc, abs=1e-5)


def test_heads_are_refused_in_plain_words_on_a_classifier():
    with pytest.raises(ValueError, match="only the GPT has attention heads"):
        Recipe("digits", "mlp", steps=(Prune(granularity="head"),))


def test_old_cached_results_load_and_classifier_rows_keep_their_columns():
    old = run(Recipe("digits", "mlp", steps=(Quantize(weight_bits=8),))).to_dict()
    for k in ("metric", "bpc", "bpc_se", "baseline_bpc", "bpc_diff", "bpc_diff_se", "file_note"):
        old.pop(k)
    r = Result.from_dict({**old, "a_field_from_the_future": 1})
    assert r.metric == "accuracy" and r.bpc is None and r.score == r.test_acc
    assert "test accuracy" in r.row() and "bits / char" not in r.row()


def test_the_gpt_has_its_own_presets_and_they_validate():
    assert presets_for("gpt") is GPT_PRESETS and presets_for(SMALL) is GPT_PRESETS
    assert presets_for("mlp") is PRESETS and presets_for("not a model") is PRESETS
    for name, make in GPT_PRESETS.items():
        r = make("pydoc", "gpt", 0)
        assert r.name == name and r.family() == "gpt"


def test_the_pareto_front_minimises_bits_per_character():
    pts = [(10, 2.1), (5, 2.4), (20, 2.2), (5, 2.6), (30, 2.0)]
    assert pareto_front(pts, lower_is_better=True) == [1, 0, 4]
    assert pareto_front(pts) == [3]  # higher is better: (5, 2.6) beats every other point
    assert pareto_front([(1, 3.0), (1, 3.0)], lower_is_better=True) == [0]


def test_result_front_reads_the_metric(float_result, tmp_path):
    w4 = run(_recipe(Quantize(weight_bits=4, target="weights")), cache_dir=tmp_path)
    front = result_front([float_result, w4])
    assert 1 in front  # the smallest always is on it
    assert (0 in front) == (float_result.bpc < w4.bpc)


def test_the_cli_runs_a_gpt_recipe(tmp_path, capsys):
    src = tmp_path / "gpt.json"
    src.write_text(json.dumps({"dataset": "pydoc", "model": SMALL,
                               "steps": [{"step": "prune", "finetune_epochs": 0}, {"step": "quantize",
                                                                                  "target": "weights"}]}))
    out = tmp_path / "runs.csv"
    assert cli_main([str(src), "--grid", "prune.sparsity=0.25,0.5", "--no-cache", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 and all(1 < float(r["bits / char"]) < 10 for r in rows)
    assert int(rows[1]["stored bytes"]) < int(rows[0]["stored bytes"])
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert summary["runs"] == 2 and summary["pareto"]
