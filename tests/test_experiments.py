"""Experiments: recipes (JSON round trip, refusals, grids), size and energy accounting counted by hand, the Pareto
front against a brute-force definition, ``run`` on digits·mlp (accuracy, kept weights, bytes, caching,
determinism across thread counts), identical results in-process and on a local Ray, and the CLI."""
import csv
import dataclasses
import importlib
import json
import math
import os
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.experiments import (
    ENERGY_PJ,
    PRESETS,
    RESULT_VERSION,
    STEPS,
    Distill,
    FineTune,
    Prune,
    Quantize,
    Recipe,
    Result,
    Share,
    cached,
    dumps,
    grid,
    layer_costs,
    loads,
    pareto_front,
    run,
    standard_error,
    summarize,
    sweep,
    with_value,
)
from compress_core.experiments.__main__ import main as cli_main
from compress_core.models import weighted_layers
from compress_core.quant import quant_layers
from compress_core.train import evaluate

# ``compress_core.experiments.run`` is the function (the package re-exports it), so the module comes by name
run_module = importlib.import_module("compress_core.experiments.run")

FLOAT_MAC = ENERGY_PJ["fp32_mult"] + ENERGY_PJ["fp32_add"]  # 3.7 + 0.9 pJ
INT_MAC = ENERGY_PJ["int8_mult"] + ENERGY_PJ["int32_add"]  # 0.2 + 0.1 pJ
DRAM_32B = ENERGY_PJ["dram_read_32b"]  # 640 pJ


# ---- recipes: JSON round trip -------------------------------------------------------------------------------
EVERY_STEP = Recipe("mnist1d", "cnn", seed=7, name="all fields", steps=(
    Prune(sparsity=0.75, criterion="random", granularity="weight", scope="global", schedule="gradual", rounds=5,
          finetune_epochs=2, finetune_lr=0.01, output_scale=0.0),
    FineTune(epochs=3, lr=0.002, optimizer="sgd"),
    Quantize(mode="qat", weight_bits=3, act_bits=6, target="both", per_channel=False, weight_symmetric=False,
             calibration=64, qat_epochs=2, qat_lr=1e-4, lsq=True),
    Distill(T=2.5, alpha=0.7, epochs=3, lr=0.002, optimizer="sgd"),
))
SHARED = Recipe("moons", "tiny", seed=3, steps=(Prune(sparsity=0.5, granularity="neuron", finetune_epochs=0),
                                               Share(bits=2, iters=7, centroid_epochs=0, centroid_lr=0.01)))
NM = Recipe("digits", "cnn", steps=(Prune(granularity="nm", schedule="iterative", output_scale=1.0),
                                    Quantize(target="weights", weight_bits=5)))


def same(a: Recipe, b: Recipe) -> bool:
    """Equal recipes *and* names (``name`` is compare=False, so == alone ignores it)."""
    return a == b and a.name == b.name and a.to_dict() == b.to_dict()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_round_trips_through_json(preset):
    r = PRESETS[preset]("digits", "mlp", 4)
    assert r.name == preset and r.seed == 4
    back = Recipe.from_json(r.to_json())
    assert same(back, r) and back.hash() == r.hash()
    assert all(type(a) is type(b) for a, b in zip(back.steps, r.steps))
    assert same(Recipe.from_dict(json.loads(json.dumps(r.to_dict()))), r)


@pytest.mark.parametrize("recipe", [EVERY_STEP, SHARED, NM], ids=["prune-finetune-qat", "neuron-share", "nm-w5"])
def test_recipes_with_every_step_and_non_default_fields_round_trip(recipe):
    back = Recipe.from_json(recipe.to_json())
    assert same(back, recipe) and back.hash() == recipe.hash()
    for a, b in zip(back.steps, recipe.steps):
        assert type(a) is type(b) and dataclasses.asdict(a) == dataclasses.asdict(b)
    # the JSON names each step's kind and holds every field
    d = json.loads(recipe.to_json())
    assert [s["step"] for s in d["steps"]] == [s.kind for s in recipe.steps]
    for s, sd in zip(recipe.steps, d["steps"]):
        assert set(sd) == {"step"} | {f.name for f in dataclasses.fields(s)}


def test_all_step_kinds_are_covered_by_the_round_trip_recipes():
    kinds = {s.kind for r in (EVERY_STEP, SHARED, NM) for s in r.steps}
    assert kinds == set(STEPS) == {"prune", "finetune", "distill", "quantize", "share"}


def test_a_recipe_with_its_own_training_config_round_trips_and_changes_the_hash():
    from compress_core.train import TrainConfig
    r = Recipe("digits", "mlp", train=TrainConfig(epochs=3, lr=0.01, optimizer="sgd"), steps=(Quantize(),))
    back = Recipe.from_json(r.to_json())
    assert same(back, r) and isinstance(back.train, TrainConfig) and back.train.epochs == 3
    assert r.hash() != dataclasses.replace(r, train=None).hash()


def test_hash_ignores_the_name_but_not_the_settings():
    r = PRESETS["prune 90 % + int4"]("digits", "mlp")
    assert dataclasses.replace(r, name="other").hash() == dataclasses.replace(r, name="").hash() == r.hash()
    assert dataclasses.replace(r, name="other") == r  # the name is no part of equality either
    assert len(r.hash()) == 16 and int(r.hash(), 16) >= 0
    others = [dataclasses.replace(r, seed=1), dataclasses.replace(r, model="cnn"),
              with_value(r, "prune.sparsity", 0.8), with_value(r, "quantize.weight_bits", 8),
              dataclasses.replace(r, steps=r.steps[:1]), dataclasses.replace(r, steps=r.steps[::-1][:1])]
    assert len({r.hash()} | {o.hash() for o in others}) == 1 + len(others)


def test_loads_and_dumps_round_trip_and_accept_the_three_shapes():
    recipes = [PRESETS[p]("digits", "mlp") for p in sorted(PRESETS)] + [EVERY_STEP, SHARED, NM]
    back = loads(dumps(recipes))
    assert len(back) == len(recipes) and all(same(a, b) for a, b in zip(back, recipes))
    assert dumps(back) == dumps(recipes)
    assert json.loads(dumps(recipes)).keys() == {"recipes"}
    # one recipe, a bare list, and {"recipes": [...]}
    assert [same(a, EVERY_STEP) for a in loads(EVERY_STEP.to_json())] == [True]
    two = loads(json.dumps([SHARED.to_dict(), NM.to_dict()]))
    assert same(two[0], SHARED) and same(two[1], NM)
    # defaults fill what a hand-written file leaves out
    (r,) = loads('{"steps": [{"step": "prune", "sparsity": 0.5}, {"step": "quantize"}]}')
    assert r == Recipe("digits", "mlp", 0, steps=(Prune(sparsity=0.5), Quantize()))


# ---- recipes: refusals ----------------------------------------------------------------------------------------
def recipe_json(*steps, **fields) -> str:
    return json.dumps(dict(fields, steps=list(steps)))


@pytest.mark.parametrize("text, words", [
    (recipe_json({"step": "bake"}), ["step 1", "unknown step 'bake'", "prune, finetune, distill, quantize, share"]),
    (recipe_json({"sparsity": 0.5}), ["step 1", "unknown step None"]),
    (recipe_json({"step": "prune", "sparsity": 1.5}), ["step 1 (prune)", "sparsity", "1.5"]),
    (recipe_json({"step": "prune"}, {"step": "share", "bits": 9}), ["step 2 (share)", "bits", "9"]),
    (recipe_json({"step": "finetune", "optimizer": "lbfgs"}), ["step 1 (finetune)", "optimizer", "lbfgs"]),
    (recipe_json({"step": "quantize", "act_bits": 1}), ["step 1 (quantize)", "act_bits", "from 2 to 8"]),
    (recipe_json({"step": "prune", "sparsity": float("nan")}), ["step 1 (prune)", "sparsity", "nan"]),
    (recipe_json({"step": "quantize", "bitz": 4}), ["step 1 (quantize)", "unknown field", "'bitz'", "weight_bits"]),
    (recipe_json({"step": "quantize", "weight_bits": "4"}), ["step 1 (quantize)", "weight_bits", "whole number"]),
    (recipe_json({"step": "quantize", "per_channel": 1}), ["step 1 (quantize)", "per_channel", "true or false"]),
    (recipe_json({"step": "prune", "finetune_epochs": 1.5}), ["step 1 (prune)", "finetune_epochs", "whole number"]),
    (recipe_json({"step": "quantize"}, {"step": "finetune"}), ["step 1 (quantize)", "must be the last step"]),
    (recipe_json({"step": "prune"}, {"step": "quantize"}, {"step": "share"}), ["steps 2 and 3", "use one of them"]),
    (recipe_json({"step": "share"}, {"step": "quantize"}), ["steps 1 and 2"]),
    (recipe_json(*[{"step": "finetune"}] * 7), ["at most 6 steps", "got 7"]),
    (recipe_json(dataset="cifar"), ["unknown data set 'cifar'", "digits"]),
    (recipe_json(dataset="moons", model="cnn"), ["Model 'cnn'", "moons", "mlp"]),
    (recipe_json(seed=-1), ["seed", "-1"]),
    (json.dumps({"datset": "digits"}), ["unknown field", "'datset'"]),
    (json.dumps({"steps": "prune"}), ["steps", "expected a list"]),
    (json.dumps({"steps": ["prune"]}), ["step 1", "expected a mapping"]),
    (json.dumps({"train": {"epochs": "x"}}), ["train.epochs", "whole number"]),
    (json.dumps([{}, {"steps": [{"step": "prune", "rounds": 0}]}]), ["Recipe 2", "step 1 (prune)", "rounds"]),
    ("this is not JSON", ["not JSON"]),
    ("", ["not JSON"]),
    ('[{"steps": []}', ["not JSON"]),
    ("[]", ["no recipe"]),
    ('{"recipes": []}', ["no recipe"]),
    ('"digits"', ["expected a mapping"]),
])
def test_bad_recipes_are_refused_naming_the_step_and_the_field(text, words):
    with pytest.raises(ValueError) as e:
        loads(text)
    msg = str(e.value)
    for w in words:
        assert w in msg, (w, msg)
    assert "Traceback" not in msg and len(msg) < 400


def test_bad_recipes_built_in_python_are_refused_too():
    with pytest.raises(ValueError, match="sparsity"):
        Prune(sparsity=-0.1)
    with pytest.raises(ValueError, match="must be the last step"):
        Recipe(steps=(Share(), Prune()))
    with pytest.raises(ValueError, match="steps must be a tuple"):
        Recipe(steps=[Prune()])
    with pytest.raises(ValueError, match="unknown data set"):
        Recipe("imagenet", "mlp")


# ---- with_value and grid --------------------------------------------------------------------------------------
def test_with_value_changes_one_field_and_leaves_the_rest():
    r = Recipe(steps=(Prune(sparsity=0.9, finetune_epochs=2), Quantize(weight_bits=8)), name="n")
    r2 = with_value(r, "prune.sparsity", 0.5)
    assert r2.steps == (Prune(sparsity=0.5, finetune_epochs=2), Quantize(weight_bits=8))
    assert r.steps[0].sparsity == 0.9  # the original is untouched (frozen)
    assert with_value(r, "seed", 3).seed == 3 and with_value(r, "seed", 3).steps == r.steps
    assert with_value(r, "quantize.weight_bits", 4).steps[1] == Quantize(weight_bits=4)


def test_with_value_adds_a_missing_step_before_the_terminal_one():
    q = Recipe(steps=(FineTune(), Quantize(weight_bits=4)))
    assert with_value(q, "prune.sparsity", 0.5).steps == (FineTune(), Prune(sparsity=0.5), Quantize(weight_bits=4))
    s = Recipe(steps=(Share(bits=3),))
    assert with_value(s, "finetune.epochs", 4).steps == (FineTune(epochs=4), Share(bits=3))
    # no terminal step: appended; a terminal step is always appended at the end
    assert with_value(Recipe(steps=(Prune(),)), "quantize.weight_bits", 2).steps == (Prune(), Quantize(weight_bits=2))
    assert with_value(Recipe(), "share.bits", 5).steps == (Share(bits=5),)
    assert with_value(Recipe(), "prune.sparsity", 0.3).steps == (Prune(sparsity=0.3),)


@pytest.mark.parametrize("path, value, words", [
    ("nope", 1, ["'nope'", "not a recipe field"]),
    ("bake.alpha", 1, ["unknown step 'bake'"]),
    ("distill.alpha", 2, ["alpha must be from 0 to 1"]),
    ("prune.nope", 1, ["Prune has no field 'nope'"]),
    ("prune.kind", "x", ["no field 'kind'"]),
    ("prune.sparsity.x", 1, ["no field 'sparsity.x'"]),
    ("prune.sparsity", 1.0, ["sparsity"]),
    ("quantize.weight_bits", 9, ["weight_bits"]),
    ("seed", -2, ["seed"]),
    ("dataset", "cifar", ["unknown data set"]),
    ("share.bits", 4, ["both quantize or share"]),  # a Share added next to the Quantize: two terminal steps
])
def test_with_value_refuses_bad_paths_and_values(path, value, words):
    r = Recipe(steps=(Prune(), Quantize()))
    with pytest.raises(ValueError) as e:
        with_value(r, path, value)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_grid_counts_and_order_first_axis_slowest():
    base = Recipe(steps=(Quantize(),))
    axes = {"prune.sparsity": [0.5, 0.8, 0.9], "quantize.weight_bits": [8, 4], "seed": [0, 1]}
    g = grid(base, axes)
    assert len(g) == 3 * 2 * 2 == len({r.hash() for r in g})
    got = [(r.step("prune").sparsity, r.step("quantize").weight_bits, r.seed) for r in g]
    assert got == [(s, b, seed) for s in axes["prune.sparsity"] for b in axes["quantize.weight_bits"]
                   for seed in axes["seed"]]
    assert all([s.kind for s in r.steps] == ["prune", "quantize"] for r in g)  # prune added before quantize
    assert grid(base, {}) == [base]
    with pytest.raises(ValueError, match="no values"):
        grid(base, {"prune.sparsity": []})
    with pytest.raises(ValueError, match="not a recipe field"):
        grid(base, {"prune.sparsity": [0.5], "bogus": [1]})


def test_equal_recipes_have_equal_hashes_whether_a_number_is_written_0_or_0_0():
    a, b = Recipe(steps=(Prune(sparsity=0),)), Recipe(steps=(Prune(sparsity=0.0),))
    assert a == b and hash(a) == hash(b)
    assert a.hash() == b.hash()


# ---- accounting by hand ---------------------------------------------------------------------------------------
def tiny_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


MASK0 = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0]], dtype=torch.float32)  # 5 of 12 kept


def test_dense_float32_costs_by_hand():
    rows = layer_costs(tiny_mlp(), None, (4,))
    r0, r2 = rows
    assert (r0["layer"], r0["shape"], r0["weights"], r0["kept"]) == ("0", "3×4", 12, 12)
    assert (r2["layer"], r2["shape"], r2["weights"], r2["kept"]) == ("2", "2×3", 6, 6)
    # everything kept: dense (48 bytes) beats bitmask (48 + 2) and CSR (48 + 12 + 4)
    assert (r0["layout"], r0["values_bytes"], r0["index_bytes"], r0["bias_bytes"], r0["bytes"]) == \
        ("dense", 48, 0, 12, 60)
    assert (r2["layout"], r2["values_bytes"], r2["index_bytes"], r2["bias_bytes"], r2["bytes"]) == \
        ("dense", 24, 0, 8, 32)
    assert (r0["macs"], r2["macs"]) == (12, 6)
    assert r0["compute_pj"] == pytest.approx(12 * 4.6) and r2["compute_pj"] == pytest.approx(6 * 4.6)
    assert r0["memory_pj"] == 15 * 640 and r2["memory_pj"] == 8 * 640
    total = summarize(rows)
    assert total["bytes"] == 92 == 4 * sum(p.numel() for p in tiny_mlp().parameters())
    assert total["macs"] == 18 and total["weights"] == total["kept"] == 18
    assert total["compute_pj"] == pytest.approx(18 * 4.6)
    assert total["memory_pj"] == pytest.approx(23 * 640)
    assert total["energy_pj"] == pytest.approx(18 * 4.6 + 23 * 640)
    assert total["format"] == "float32, dense"


def test_pruned_3_bit_integer_costs_by_hand():
    # layer 0: 12 positions, 5 kept, 3-bit codes
    #   dense   ceil(12·3/8) = 5
    #   bitmask ceil(5·3/8) = 2 values + ceil(12/8) = 2 bits       = 4   <- cheapest
    #   CSR     2 values + 5 column indices (1 byte: 4 columns) + (3 + 1) row pointers (1 byte: nnz 5) = 11
    #   side: 13 bits -> 2 bytes; bias 3 × 4 = 12          total 4 + 2 + 12 = 18
    # layer 2: 6 positions, all kept (no mask entry)
    #   dense ceil(6·3/8) = 3 <- cheapest; bitmask 3 + 1 = 4; CSR 3 + 6 + 3 = 12
    #   side: 64 bits -> 8 bytes; bias 2 × 4 = 8            total 3 + 8 + 8 = 19
    rows = layer_costs(tiny_mlp(), {"0.weight": MASK0}, (4,), value_bits=3,
                       side_bits={"0.weight": 13, "2.weight": 64}, integer=True)
    r0, r2 = rows
    assert (r0["kept"], r0["value_bits"], r0["layout"]) == (5, 3, "bitmask")
    assert (r0["values_bytes"], r0["index_bytes"], r0["side_bytes"], r0["bias_bytes"], r0["bytes"]) == \
        (2, 2, 2, 12, 18)
    assert (r2["kept"], r2["layout"]) == (6, "dense")
    assert (r2["values_bytes"], r2["index_bytes"], r2["side_bytes"], r2["bias_bytes"], r2["bytes"]) == (3, 0, 8, 8, 19)
    # integer products: 0.2 pJ multiply + 0.1 pJ int32 add per kept weight; ceil(bytes / 4) DRAM reads
    assert (r0["macs"], r2["macs"]) == (5, 6)
    assert r0["compute_pj"] == pytest.approx(5 * 0.3) and r2["compute_pj"] == pytest.approx(6 * 0.3)
    assert r0["memory_pj"] == 5 * 640 and r2["memory_pj"] == 5 * 640
    assert r0["energy_pj"] == pytest.approx(1.5 + 3200)
    total = summarize(rows)
    assert (total["bytes"], total["macs"], total["weights"], total["kept"]) == (37, 11, 18, 11)
    assert total["compute_pj"] == pytest.approx(3.3) and total["memory_pj"] == 6400
    assert total["energy_pj"] == pytest.approx(6403.3)
    assert total["format"] == "3-bit codes, dense / bitmask"


def test_the_same_mask_priced_as_float_costs_more_per_mac():
    f = summarize(layer_costs(tiny_mlp(), {"0.weight": MASK0}, (4,), value_bits=3))
    i = summarize(layer_costs(tiny_mlp(), {"0.weight": MASK0}, (4,), value_bits=3, integer=True))
    assert f["macs"] == i["macs"] == 11
    assert f["compute_pj"] == pytest.approx(11 * FLOAT_MAC) and i["compute_pj"] == pytest.approx(11 * INT_MAC)
    assert FLOAT_MAC == pytest.approx(4.6) and INT_MAC == pytest.approx(0.3) and DRAM_32B == 640


def uint(v: int) -> int:
    """Bytes of the smallest unsigned integer (1, 2 or 4 bytes) that holds ``v``."""
    return 1 if v < 256 else 2 if v < 65536 else 4


def mask_with(shape, kept_positions) -> torch.Tensor:
    m = torch.zeros(shape)
    for p in kept_positions:
        m[p] = 1
    return m


@pytest.mark.parametrize("n_in, n_out, kept, bits, layout, values, index", [
    # 2 × 300, 3 kept, float32: dense 2400; bitmask 12 + 75 = 87; CSR 12 + 3 × 2-byte columns (300 columns)
    # + 3 × 1-byte row pointers = 21
    (300, 2, [(0, 0), (0, 299), (1, 5)], 32, "CSR", 12, 3 * 2 + 3 * 1),
    # 10 × 256, 256 kept (row 0 full): bitmask index 320; CSR 256 × 1-byte columns + 11 × 2-byte pointers = 278
    (256, 10, [(0, j) for j in range(256)], 32, "CSR", 1024, 256 + 11 * 2),
    # 1 × 16, nothing kept: bitmask 0 + 2 ties CSR 0 + 0 + 2 × 1: bitmask wins ties over CSR
    (16, 1, [], 32, "bitmask", 0, 2),
    # 2 × 4, 7 of 8 kept, 8 bits: dense 8 ties bitmask 7 + 1: dense wins ties
    (4, 2, [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2)], 8, "dense", 8, 0),
    # 2 × 4, 7 of 8 kept, 4 bits: dense 4 beats bitmask ceil(28/8) = 4 + 1 = 5
    (4, 2, [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2)], 4, "dense", 4, 0),
    # 2 × 64, 1 kept, 1-bit codes: dense 16; bitmask 1 + 16; CSR 1 + 1 + 3 = 5
    (64, 2, [(1, 63)], 1, "CSR", 1, 1 + 3),
])
def test_layer_costs_picks_the_cheapest_layout(n_in, n_out, kept, bits, layout, values, index):
    model = nn.Sequential(nn.Linear(n_in, n_out))
    mask = mask_with((n_out, n_in), kept)
    (row,) = layer_costs(model, {"0.weight": mask}, (n_in,), value_bits=bits)
    assert (row["layout"], row["values_bytes"], row["index_bytes"]) == (layout, values, index)
    assert row["bytes"] == values + index + 4 * n_out and row["kept"] == len(kept) == row["macs"]
    assert row["memory_pj"] == math.ceil(row["bytes"] / 4) * 640
    assert summarize([row])["format"] == ("float32" if bits == 32 else f"{bits}-bit codes") + ", " + layout


def test_convolutions_count_output_positions_times_kept_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 3, kernel_size=3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 8, 2))
    conv_mask = torch.zeros(3, 2, 3)
    conv_mask[0, 0, :] = 1
    conv_mask[1, 1, 1:] = 1
    conv_mask[2, :, 0] = 1  # 3 + 2 + 2 = 7 kept
    c, f = layer_costs(model, {"0.weight": conv_mask}, (2, 10))
    # L_out = 10 - 3 + 1 = 8 positions, 7 kept weights each
    assert (c["layer"], c["kept"], c["macs"]) == ("0", 7, 7 * 8)
    # 18 positions: dense 72; bitmask 28 + 3 = 31; CSR (3 rows of 6) 28 + 7 + 4 = 39
    assert (c["layout"], c["values_bytes"], c["index_bytes"], c["bias_bytes"], c["bytes"]) == \
        ("bitmask", 28, 3, 12, 43)
    assert (f["layer"], f["kept"], f["macs"], f["layout"], f["bytes"]) == ("3", 48, 48, "dense", 48 * 4 + 8)
    assert summarize([c, f])["macs"] == 56 + 48
    assert summarize([c, f])["format"] == "float32, dense / bitmask"
    # 2-D: a 3 × 3 kernel on 5 × 5 gives 3 × 3 = 9 positions
    model2 = nn.Sequential(nn.Conv2d(1, 2, kernel_size=3), nn.Flatten(), nn.Linear(2 * 9, 2))
    c2, _ = layer_costs(model2, None, (1, 5, 5))
    assert (c2["kept"], c2["macs"]) == (18, 18 * 9)


def test_layer_costs_agrees_with_a_direct_count_on_random_masks():
    g = torch.Generator().manual_seed(1)
    model = nn.Sequential(nn.Linear(37, 29), nn.ReLU(), nn.Linear(29, 300), nn.ReLU(), nn.Linear(300, 5))
    for trial in range(20):
        p = [0.0, 0.02, 0.3, 0.9, 1.0][trial % 5]
        mask = {f"{n}.weight": (torch.rand(m.weight.shape, generator=g) < p).float()
                for n, m in weighted_layers(model)}
        bits = [1, 2, 3, 4, 5, 8, 32][trial % 7]
        for row, (name, m) in zip(layer_costs(model, mask, (37,), value_bits=bits), weighted_layers(model)):
            mk = mask[f"{name}.weight"]
            rows_, cols = mk.shape
            n, k = mk.numel(), int(mk.sum())
            opts = {"dense": math.ceil(n * bits / 8), "bitmask": math.ceil(k * bits / 8) + math.ceil(n / 8),
                    "CSR": math.ceil(k * bits / 8) + k * uint(cols - 1) + (rows_ + 1) * uint(k)}
            assert row["values_bytes"] + row["index_bytes"] == min(opts.values()) == opts[row["layout"]]
            assert row["bytes"] == min(opts.values()) + 4 * m.bias.numel()
            assert row["macs"] == k


# ---- Pareto front and standard error -------------------------------------------------------------------------
def brute_pareto(points) -> list[int]:
    """O(n²): i is on the front when no point is as cheap and as good with one of them strictly better; of exactly
    equal points the first stays. Sorted by cost."""
    def beats(a, b):
        return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])
    keep = [i for i, p in enumerate(points)
            if not any(beats(q, p) for q in points) and not any(points[j] == p for j in range(i))]
    return sorted(keep, key=lambda i: points[i][0])


def test_pareto_front_examples_ties_and_duplicates():
    assert pareto_front([(10, 0.9), (5, 0.8), (20, 0.85), (5, 0.7)]) == [1, 0]  # the docstring
    assert pareto_front([]) == []
    assert pareto_front([(3, 0.5)]) == [0]
    assert pareto_front([(5, 0.8), (5, 0.8), (5, 0.8)]) == [0]  # duplicates: the first
    assert pareto_front([(1, 0.5), (2, 0.5)]) == [0]  # same value, dearer: beaten
    assert pareto_front([(1, 0.5), (1, 0.6)]) == [1]  # same cost, better: wins
    assert pareto_front([(4, 0.9), (1, 0.1), (2, 0.5), (3, 0.5), (3, 0.7)]) == [1, 2, 4, 0]
    assert pareto_front([(2, 1.0), (1, 0.0), (1, 0.0)]) == [1, 0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=25)
       | st.lists(st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.floats(0, 1, allow_nan=False)), max_size=25))
def test_pareto_front_matches_the_brute_force_definition(points):
    front = pareto_front(points)
    assert front == brute_pareto(points)
    costs = [points[i][0] for i in front]
    values = [points[i][1] for i in front]
    assert costs == sorted(costs) and values == sorted(values)  # cheaper is worse along the front


def test_pareto_front_keeps_a_lone_point_whatever_its_value():
    assert pareto_front([(1.0, float("-inf"))]) == [0]


@pytest.mark.parametrize("p, n", [(0.5, 100), (0.9833, 360), (0.0, 50), (1.0, 50), (0.123, 7)])
def test_standard_error_is_the_binomial_one(p, n):
    assert standard_error(p, n) == pytest.approx(math.sqrt(p * (1 - p) / n))
    assert standard_error(p, n) >= 0


def test_standard_error_of_no_examples_is_nan():
    assert math.isnan(standard_error(0.5, 0))


# ---- run on digits·mlp ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """This module's own run cache (baselines still come from the shared test cache)."""
    return tmp_path_factory.mktemp("experiments-cache")


@pytest.fixture(scope="module")
def go(runs_dir):
    return lambda recipe: run(recipe, cache_dir=runs_dir)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits"), get_baseline("digits", "mlp")


def layout_bytes(shape: str, kept: int, bits: int) -> int:
    """Value + index bytes of the cheapest layout (dense, bitmask, CSR) of a ``rows×cols`` layer, counted directly."""
    rows, cols = (int(x) for x in shape.split("×"))
    n = rows * cols
    return min(math.ceil(n * bits / 8), math.ceil(kept * bits / 8) + math.ceil(n / 8),
               math.ceil(kept * bits / 8) + kept * uint(cols - 1) + (rows + 1) * uint(kept))


def test_float_baseline_recipe_measures_the_baseline(go, digits):
    ds, base = digits
    res = go(PRESETS["float baseline"]("digits", "mlp"))
    model = base.model
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        acc = evaluate(model, ds.x_test, ds.y_test).accuracy
    finally:
        torch.set_num_threads(torch_threads)
    assert res.test_acc == acc and res.baseline_acc == base.test_metrics.accuracy
    assert abs(res.test_acc - base.test_metrics.accuracy) <= 1 / len(ds.y_test) + 1e-12
    assert res.n_test == len(ds.y_test) == 360
    assert res.test_acc_se == pytest.approx(standard_error(res.test_acc, 360))
    params = sum(p.numel() for p in model.parameters())
    weights = sum(m.weight.numel() for _, m in weighted_layers(model))
    assert res.weights == res.kept == weights == 64 * 300 + 300 * 100 + 100 * 10
    assert res.bytes == res.float32_bytes == 4 * params and res.ratio == 1.0 and res.kept_fraction == 1.0
    assert res.format == "float32, dense" and res.macs == weights
    assert res.energy_pj == res.float_energy_pj
    assert res.compute_pj == pytest.approx(weights * FLOAT_MAC)
    assert res.memory_pj == sum(math.ceil(r["bytes"] / 4) * DRAM_32B for r in res.layers)
    assert res.latency_ms["float"] > 0 and res.latency_ms["shrunk"] is None and res.latency_ms["integer"] is None
    assert res.integer_acc is None and res.integer_note  # says why there is no integer program
    assert res.title == "float baseline" and res.describe == "float baseline" and res.boundary is None


@pytest.mark.parametrize("sparsity, output_scale", [(0.8, 0.5), (0.6, 0.0), (0.9, 1.0)])
def test_prune_keeps_the_sparsity_per_layer_and_the_output_layer_at_its_scale(go, sparsity, output_scale):
    res = go(Recipe(steps=(Prune(sparsity=sparsity, output_scale=output_scale, finetune_epochs=0),)))
    rates = {"fc1": sparsity, "fc2": sparsity, "fc3": sparsity * output_scale}
    assert [r["layer"] for r in res.layers] == ["fc1", "fc2", "fc3"]
    for r in res.layers:
        assert r["kept"] == r["weights"] - round(rates[r["layer"]] * r["weights"]), r
        assert r["macs"] == r["kept"] and r["value_bits"] == 32
        assert r["values_bytes"] + r["index_bytes"] == layout_bytes(r["shape"], r["kept"], 32)
    assert res.kept == sum(r["kept"] for r in res.layers) and res.weights == 50200
    assert res.kept_fraction == pytest.approx(1 - (sparsity * 49200 + sparsity * output_scale * 1000) / 50200,
                                              abs=2 / 50200)
    assert res.bytes == sum(r["bytes"] for r in res.layers) < res.float32_bytes
    assert res.format.startswith("float32, ") and res.integer_acc is None
    assert res.test_acc < 1 and res.test_acc > 0.5


def test_structured_pruning_shrinks_the_network(go, spy):
    res = go(Recipe(steps=(Prune(sparsity=0.5, granularity="neuron", finetune_epochs=0),)))
    (state,) = spy
    assert state.shrunk and state.mask is None
    assert [r["shape"] for r in res.layers] == ["150×64", "50×150", "10×50"]  # half the hidden neurons
    assert res.kept == 150 * 64 + 50 * 150 + 10 * 50 == sum(r["weights"] for r in res.layers)
    assert all(r["layout"] == "dense" for r in res.layers) and res.format == "float32, dense"
    assert res.bytes == 4 * (res.kept + 150 + 50 + 10) < res.float32_bytes
    assert res.latency_ms["shrunk"] is not None and res.latency_ms["shrunk"] > 0
    assert res.weights == 50200 and res.macs == res.kept


def test_int8_ptq_integer_accuracy_and_bytes(go):
    res = go(Recipe(steps=(Quantize(weight_bits=8, act_bits=8),)))
    assert res.integer_acc is not None and abs(res.integer_acc - res.test_acc) <= 0.01
    assert abs(res.test_acc - res.baseline_acc) <= 0.02
    assert res.latency_ms["integer"] is not None and res.latency_ms["integer"] > 0
    assert res.format == "8-bit codes, dense" and res.integer_note == ""
    for i, r in enumerate(res.layers):
        out = int(r["shape"].split("×")[0])
        # a float32 scale per channel + the output's S and Z (+ the network input's S and Z on the first layer,
        # as the Quantization page's model size counts them)
        assert r["side_bytes"] == (out * 32 + 64 + (64 if i == 0 else 0)) // 8
        assert r["values_bytes"] == r["weights"] and r["bias_bytes"] == 4 * out
    assert res.bytes == sum(r["weights"] + r["side_bytes"] + r["bias_bytes"] for r in res.layers)
    assert res.compute_pj == pytest.approx(res.macs * INT_MAC)  # integer products
    assert res.ratio == pytest.approx(res.float32_bytes / res.bytes) and 3 < res.ratio < 4


def test_weight_only_quantization_has_no_integer_program_and_float_products(go):
    res = go(Recipe(steps=(Quantize(target="weights", weight_bits=4),)))
    assert res.integer_acc is None and res.latency_ms["integer"] is None and res.integer_note
    assert res.compute_pj == pytest.approx(res.macs * FLOAT_MAC)
    assert res.format == "4-bit codes, dense"
    assert [r["side_bytes"] for r in res.layers] == [300 * 4, 100 * 4, 10 * 4]  # scales only, no activations


def test_qat_after_pruning_keeps_the_pruned_weights_at_zero(go, spy):
    prune = Prune(sparsity=0.8, finetune_epochs=0)
    pruned = go(Recipe(steps=(prune,)))
    qat = go(Recipe(steps=(prune, Quantize(mode="qat", weight_bits=4, qat_epochs=1))))
    assert qat.kept == pruned.kept and [r["kept"] for r in qat.layers] == [r["kept"] for r in pruned.layers]
    assert qat.format == "4-bit codes, bitmask"
    state = spy[-1]
    assert state.mask is not None and state.final is not None
    layers = dict(quant_layers(state.final))
    for name, m in weighted_layers(state.net):
        off = state.mask[f"{name}.weight"] == 0
        assert int(off.sum()) > 0
        assert torch.all(m.weight[off] == 0), name  # the float weights that the bytes count
        assert torch.all(layers[name].quantized_weight()[off] == 0), name  # and what the quantized net computes
    assert qat.integer_acc is not None and abs(qat.integer_acc - qat.test_acc) <= 0.02


def test_share_stores_codes_and_a_codebook_per_layer(go, spy):
    res = go(Recipe(steps=(Prune(sparsity=0.8, finetune_epochs=0), Share(bits=3, centroid_epochs=0))))
    assert res.format == "3-bit codes, bitmask" and res.integer_acc is None
    for r in res.layers:
        assert r["value_bits"] == 3 and r["side_bytes"] == 8 * 4  # k = 2³ float32 centroids
        assert r["values_bytes"] + r["index_bytes"] == layout_bytes(r["shape"], r["kept"], 3)
        assert r["bytes"] == layout_bytes(r["shape"], r["kept"], 3) + 32 + r["bias_bytes"]
    assert res.compute_pj == pytest.approx(res.macs * FLOAT_MAC)  # shared values are float32
    state = spy[-1]
    for name, m in weighted_layers(state.net):
        on = state.mask[f"{name}.weight"] != 0
        assert torch.unique(m.weight[on]).numel() <= 8 and torch.all(m.weight[~on] == 0)


def test_run_reports_progress_in_order(runs_dir):
    seen = []
    run(Recipe(steps=(Prune(sparsity=0.5, finetune_epochs=0), Quantize())), lambda f, t: seen.append((f, t)),
        use_cache=False)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] < 1
    assert any("Step 1/2" in t for _, t in seen) and any("Step 2/2" in t for _, t in seen)


def test_results_are_cached_in_memory_and_on_disk(go, runs_dir, monkeypatch):
    r = Recipe(steps=(Prune(sparsity=0.7, finetune_epochs=0), Quantize(weight_bits=6)))
    assert cached(r, runs_dir) is None
    first = go(r)
    path = runs_dir / "runs" / f"{RESULT_VERSION}-{r.hash()}.json"
    assert path.exists() and json.loads(path.read_text()) == first.to_dict()

    def boom(*a, **k):
        raise AssertionError("computed again instead of read from the cache")

    monkeypatch.setattr(run_module, "_compute", boom)
    again = go(r)
    assert again.seconds == first.seconds and again.to_dict() == first.to_dict()
    # another name: the same entry, under the new title
    named = go(dataclasses.replace(r, name="my variant"))
    assert named.title == "my variant" and named.recipe["name"] == "my variant"
    assert named.comparable() | {"title": first.title, "recipe": first.recipe} == first.comparable()
    assert go(r).title == r.describe() == first.title  # the cached entry kept its own title
    # from disk alone (a fresh process)
    monkeypatch.setattr(run_module, "_MEMORY", type(run_module._MEMORY)())
    disk = go(r)
    assert disk.to_dict() == first.to_dict()
    assert cached(r, runs_dir).to_dict() == first.to_dict()


def test_an_unreadable_cache_entry_is_computed_again(go, runs_dir):
    r = Recipe(steps=(Prune(sparsity=0.65, finetune_epochs=0),))
    path = runs_dir / "runs" / f"{RESULT_VERSION}-{r.hash()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"half": ')
    assert cached(r, runs_dir) is None
    res = go(r)
    assert json.loads(path.read_text()) == res.to_dict()


def test_use_cache_false_writes_nothing(runs_dir):
    before = sorted(p.name for p in (runs_dir / "runs").glob("*.json")) if (runs_dir / "runs").exists() else []
    r = Recipe(steps=(Prune(sparsity=0.55, finetune_epochs=0),))
    run(r, use_cache=False, cache_dir=runs_dir)
    after = sorted(p.name for p in (runs_dir / "runs").glob("*.json")) if (runs_dir / "runs").exists() else []
    assert after == before and cached(r, runs_dir) is None


def test_result_round_trips_through_dict_and_json(go):
    res = go(Recipe(steps=(Prune(sparsity=0.8, finetune_epochs=0), Quantize(weight_bits=4))))
    assert Result.from_dict(res.to_dict()) == res
    assert Result.from_dict(json.loads(json.dumps(res.to_dict()))) == res
    assert Result.from_dict(dict(res.to_dict(), unknown_future_field=1)) == res
    row = res.row()
    assert row["stored bytes"] == res.bytes and row["hash"] == Recipe.from_dict(res.recipe).hash()
    assert row["× smaller"] == pytest.approx(res.float32_bytes / res.bytes)


def test_two_d_data_has_a_decision_boundary_and_images_none(go, digits):
    moons = go(Recipe("moons", "mlp", steps=(Prune(sparsity=0.5, finetune_epochs=0),)))
    b = moons.boundary
    assert b is not None and len(b["x"]) == len(b["y"]) == 70
    assert len(b["z"]) == 70 and all(len(row) == 70 for row in b["z"])
    assert {c for row in b["z"] for c in row} == {0, 1}  # both classes appear on the grid
    assert b["x"] == sorted(b["x"]) and b["y"] == sorted(b["y"])
    assert go(Recipe(steps=(Prune(sparsity=0.5, finetune_epochs=0),))).boundary is None


def test_a_run_gives_the_same_numbers_whatever_the_callers_thread_count():
    r = Recipe(steps=(Prune(sparsity=0.8, finetune_epochs=1), Quantize(weight_bits=4)))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = run(r, use_cache=False)
        assert torch.get_num_threads() == 2  # the caller's setting is restored
        torch.set_num_threads(1)
        b = run(r, use_cache=False)
    finally:
        torch.set_num_threads(before)
    assert a.comparable() == b.comparable()
    assert a.kept < a.weights and a.integer_acc is not None  # the whole pipeline ran


def test_local_sweep_keeps_the_order_and_reports_progress(runs_dir):
    recipes = grid(Recipe(steps=(Prune(finetune_epochs=0),)), {"prune.sparsity": [0.3, 0.6, 0.9]})
    seen = []
    out = sweep(recipes, progress=lambda f, t: seen.append(f), cache_dir=str(runs_dir))
    assert [r.recipe["steps"][0]["sparsity"] for r in out] == [0.3, 0.6, 0.9]
    assert [r.kept for r in out] == sorted((r.kept for r in out), reverse=True)
    assert seen == pytest.approx([1 / 3, 2 / 3, 1.0])
    with pytest.raises(ValueError, match="Unknown executor"):
        sweep(recipes, executor="dask")


# ---- Ray -----------------------------------------------------------------------------------------------------
def test_ray_gives_the_same_results_as_in_process(root):
    import ray  # requirements-test.txt installs the optional requirements-ray.txt: a missing Ray fails, never skips

    recipes = grid(Recipe(steps=(Prune(finetune_epochs=1), Quantize())),
                   {"prune.sparsity": [0.5, 0.9], "quantize.weight_bits": [8, 3]})
    recipes[1] = dataclasses.replace(recipes[1], name="renamed")
    local = sweep(recipes, use_cache=False)
    started = ray.is_initialized()
    if not started:
        env = {"PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               "COMPRESS_LAB_CACHE": os.environ["COMPRESS_LAB_CACHE"]}
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        remote = sweep(recipes, executor="ray", use_cache=False)
    finally:
        if not started:
            ray.shutdown()
    assert len(remote) == len(local) == 4
    for a, b in zip(local, remote):
        assert a.comparable() == b.comparable()
    assert [r.title for r in remote] == [r.title for r in recipes] and remote[1].title == "renamed"
    assert len({r.bytes for r in remote}) == 4  # four different recipes, really run


# ---- CLI -----------------------------------------------------------------------------------------------------
def test_ray_executor_without_ray_says_how_to_install_it(monkeypatch):
    """Ray is optional (requirements-ray.txt): ``sys.modules["ray"] = None`` makes ``import ray`` fail as on a
    machine without it. The sweep says what to install before running anything; the local executor still works."""
    monkeypatch.setitem(sys.modules, "ray", None)
    recipes = [Recipe(steps=(Quantize(),))]
    with pytest.raises(ModuleNotFoundError, match=r"pip install -r requirements-ray\.txt"):
        sweep(recipes, executor="ray", use_cache=False)
    assert len(sweep(recipes, use_cache=False)) == 1


def test_cli_ray_executor_without_ray_exits_2_with_a_plain_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    src = tmp_path / "r.json"
    src.write_text(Recipe(steps=(Quantize(),)).to_json())
    assert cli_main([str(src), "--executor", "ray", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "error: The Ray executor needs Ray" in err and "requirements-ray.txt" in err and "Traceback" not in err


def test_cli_runs_a_grid_to_csv(tmp_path, capsys):
    src = tmp_path / "recipes.json"
    src.write_text(json.dumps({"dataset": "digits", "model": "mlp",
                               "steps": [{"step": "prune", "finetune_epochs": 0}, {"step": "quantize"}]}))
    out = tmp_path / "runs.csv"
    code = cli_main([str(src), "--grid", "prune.sparsity=0.5,0.9", "--grid", "quantize.weight_bits=8,4",
                     "--no-cache", "--out", str(out)])
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4
    expected = grid(loads(src.read_text())[0], {"prune.sparsity": [0.5, 0.9], "quantize.weight_bits": [8, 4]})
    assert [r["hash"] for r in rows] == [r.hash() for r in expected]
    assert [r["recipe"] for r in rows] == [r.describe() for r in expected]
    assert rows[0]["recipe"] == "prune unstructured 50% → PTQ w8a8"
    size = [int(r["stored bytes"]) for r in rows]
    assert size[1] < size[0] and size[3] < size[2] and size[2] < size[0]
    assert all(0 < float(r["test accuracy"]) <= 1 for r in rows)
    assert all(r["format"].endswith("bitmask") for r in rows)
    err = capsys.readouterr().err.strip().splitlines()
    summary = json.loads(err[-1])
    assert summary["runs"] == 4 and summary["executor"] == "local"
    assert summary["pareto"] and set(summary["pareto"]) <= {r["variant"] for r in rows}
    assert "4/4 runs done" in "\n".join(err)


def test_cli_writes_csv_to_stdout_without_out(tmp_path, capsys):
    src = tmp_path / "one.json"
    src.write_text(Recipe(steps=(Prune(sparsity=0.5, finetune_epochs=0),), name="half").to_json())
    assert cli_main([str(src), "--no-cache"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(rows) == 1 and rows[0]["variant"] == "half"


@pytest.mark.parametrize("content, extra, words", [
    ('{"steps": [{"step": "prune", "sparsity": 1.5}]}', [], ["step 1 (prune)", "sparsity"]),
    ("not json at all", [], ["not JSON"]),
    ("[]", [], ["no recipe"]),
    ('{"steps": [{"step": "prune"}]}', ["--grid", "prune.nope=1,2"], ["no field 'nope'"]),
    ('{"steps": [{"step": "prune"}]}', ["--grid", "prune.sparsity=0.5,2"], ["sparsity"]),
    (None, [], ["error:"]),  # no such file
])
def test_cli_bad_input_exits_2_with_a_plain_message(tmp_path, capsys, content, extra, words):
    src = tmp_path / "bad.json"
    if content is not None:
        src.write_text(content)
    assert cli_main([str(src), *extra, "--no-cache"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    for w in words:
        assert w in err, (w, err)


def test_cli_malformed_grid_option_is_a_usage_error(tmp_path, capsys):
    src = tmp_path / "r.json"
    src.write_text("{}")
    with pytest.raises(SystemExit) as e:
        cli_main([str(src), "--grid", "prune.sparsity"])
    assert e.value.code == 2 and "path=v1,v2" in capsys.readouterr().err


def test_cli_grid_over_a_named_recipe_gives_distinct_variants(tmp_path, capsys):
    src = tmp_path / "preset.json"
    src.write_text(dumps([Recipe(steps=(Prune(sparsity=0.9, finetune_epochs=0),), name="prune 90 %")]))
    out = tmp_path / "runs.csv"
    assert cli_main([str(src), "--grid", "prune.sparsity=0.5,0.9", "--no-cache", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len({r["variant"] for r in rows}) == 2


def test_the_dense_control_trains_the_baseline_as_long_as_the_recipe_does():
    """``Recipe.training_control``: every training step becomes a FineTune of as many epochs with the same optimizer
    and rate. A prune at 0 % with fine-tuning compresses nothing, so it and its control are the same run: the same
    test loss to the last bit."""
    r = Recipe("moons", "tiny", 0, steps=(Prune(sparsity=0.0, finetune_epochs=2),))
    c = r.training_control()
    assert c.steps == (FineTune(epochs=2, lr=0.03, optimizer="sgd"),) and c.name.endswith("(dense control)")
    a, b = run(r, use_cache=False), run(c, use_cache=False)
    assert a.test_loss == b.test_loss and a.test_acc == b.test_acc
    # an iterative prune fine-tunes after each of its rounds; QAT trains with Adam; Distill on the labels alone
    r = Recipe("moons", "tiny", 0, steps=(Prune(sparsity=0.5, schedule="iterative", rounds=3, finetune_epochs=1),
                                          Distill(epochs=2, lr=2e-3), Quantize(mode="qat", qat_epochs=2, qat_lr=1e-3)))
    assert r.training_control().steps == (FineTune(epochs=3, lr=0.03, optimizer="sgd"),
                                          FineTune(epochs=2, lr=2e-3, optimizer="adam"),
                                          FineTune(epochs=2, lr=1e-3, optimizer="adam"))
    # nothing trained, nothing to control
    assert Recipe("moons", "tiny", 0, steps=(Prune(sparsity=0.5, finetune_epochs=0), Quantize())).training_control() \
        is None
