"""The Deep compression page's numbers come from the library: key stages, notes, Han's whole-model formula,
the formula table and the centroids a layer uses."""

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.deep_compression import PipelineConfig, han_ratio, run_pipeline
from compress_core.deep_compression.report import formula_rows, stage_summary, used_centroids


def test_stage_summary_and_tables(digits_mlp):
    res = run_pipeline(*digits_mlp, PipelineConfig(sparsity=0.8, rounds=2, epochs=0, bits=3, centroid_epochs=0))
    s = stage_summary(res)
    assert s.dense is res.stages[0] and s.final is res.stages[-1] and s.pruned["stage"].startswith("pruned")
    assert s.pruned is [r for r in res.stages if r["stage"].startswith("pruned")][-1]
    assert s.accuracy_change == s.final["test_acc"] - s.dense["test_acc"]
    assert not s.sparse_costs_more and not s.one_bit_uniform and s.dead_layers == ()
    assert s.n_kept == sum(r["n"] for r in res.formula) > 0 and s.formula_ratio == han_ratio(s.n_kept, 8)
    rows = formula_rows(res)
    assert len(rows) == len(res.formula) and "b" not in rows[0] and rows[0]["n kept"] == res.formula[0]["n"]
    assert rows[0]["formula ×"] == round(res.formula[0]["han_formula"], 2)
    for key in res.centroids:
        used = used_centroids(res, key)
        assert used == int(res.final_state[key][res.mask[key].bool()].unique().numel()) and 1 <= used <= 8


def test_low_sparsity_and_one_bit_uniform_notes(digits_mlp):
    res = run_pipeline(*digits_mlp, PipelineConfig(sparsity=0.0, rounds=1, epochs=0, method="uniform", bits=1))
    s = stage_summary(res)
    assert s.sparse_costs_more and s.one_bit_uniform  # every survivor stores an index; levels −S and 0 only
    assert all(used_centroids(res, k) is None for k in res.mask)  # uniform: no codebook


def test_layers_that_sharing_makes_bigger_are_named():
    """A layer too small for its codebook: the page explains why its 'with index' ratio is the higher one."""
    res = run_pipeline(get_baseline("moons", "tiny"), load_dataset("moons"),
                       PipelineConfig(sparsity=0.9, rounds=1, epochs=0, bits=4, centroid_epochs=0))
    s = stage_summary(res)
    assert set(s.sharing_grows) == {r["layer"] for r in res.formula if r["n"] and r["measured"] < 1}
    assert s.sharing_grows  # moons·tiny's layers keep a few dozen weights: 16 float32 centroids outweigh them


def test_file_breakdown_layers_and_the_published_comparison(digits_mlp):
    """Issue 13: the file's bytes by kind sum to its length; the published LeNet-300-100 figures sit beside ours."""
    from compress_core.deep_compression.report import (
        PUBLISHED_LENET_300_100,
        file_breakdown,
        file_layers,
        published_comparison,
    )

    res = run_pipeline(*digits_mlp, PipelineConfig(sparsity=0.9, rounds=1, epochs=0, bits=4, centroid_epochs=0))
    parts = file_breakdown(res)
    assert [p["part"] for p in parts] == ["relative indices", "codes", "codebooks / scales", "biases",
                                          "headers and checksum"]
    assert sum(p["bytes"] for p in parts) == len(res.file) == res.stages[-1]["bytes"]
    assert abs(sum(p["share"] for p in parts) - 1) < 1e-9
    from compress_core.viz.deep_compression import file_bytes

    fig = file_bytes(parts, len(res.file))
    assert list(fig.data[0].x) == [p["bytes"] for p in parts][::-1]
    assert f"{len(res.file):,} bytes" in fig.layout.title.text
    layers = file_layers(res)
    assert [r["layer"] for r in layers] == ["fc1", "fc2", "fc3"] and all(1 <= r["index bits"] <= 15 for r in layers)
    assert sum(r["layer bytes"] for r in layers) < len(res.file)  # the rest: frame, JSON header, checksum
    s = stage_summary(res)
    assert s.shared is res.stages[-2] and s.final["stage"] == "Huffman-coded file"
    rows = published_comparison(res)
    assert [r["stage"] for r in rows] == ["dense float32", "pruned", "shared / quantized", "Huffman-coded file"]
    assert rows[-1]["this run (measured)"].startswith(f"{len(res.file) / 1024:.1f} KB ({s.final['ratio']:.1f}×)")
    pub = PUBLISHED_LENET_300_100
    assert (pub["dense_kb"], pub["final_kb"], pub["ratio"]) == (1070, 27, 40)  # Han 2016, Table 1
    assert rows[-1]["Han et al. (published)"] == "27 KB (40×), 1.58 % error"
