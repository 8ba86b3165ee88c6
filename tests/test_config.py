"""The frozen-config base: JSON round trip of every config, hashes that stay put (they name cache folders),
clear messages for bad input, help text on every field, one recipe table and one SCOPES."""
import dataclasses
import json
from dataclasses import dataclass, replace

import pytest

import compress_core.deep_compression.pipeline as deep_compression
import compress_core.lottery.results as lottery_results
import compress_core.pruning as pruning
import compress_core.pruning.masks as masks
from compress_core.baselines import (
    FALLBACK_RECIPE,
    TICKET_OVERRIDES,
    TRAIN_RECIPES,
    BaselineConfig,
    default_train_config,
    ticket_train_config,
)
from compress_core.config import SCOPES, Config, param
from compress_core.deep_compression import PipelineConfig
from compress_core.experiments import Distill, FineTune, Prune, Quantize, Recipe, Share
from compress_core.lottery import LotteryConfig
from compress_core.pruning import PruneSettings
from compress_core.quant import QuantConfig
from compress_core.recover.adaround import AdaRoundConfig
from compress_core.train import TrainConfig

TRAIN = TrainConfig(epochs=3, batch_size=16, lr=5e-3, optimizer="sgd", weight_decay=1e-4, eval_every=7,
                    rewind_iteration=9)
# One instance of every config class, each away from its defaults, tuple and nested fields included.
EXAMPLES = [
    TRAIN,
    BaselineConfig("mnist1d", "cnn", 3, TRAIN),
    LotteryConfig(dataset="digits", rounds=4, rate=0.3, scope="global", rewind="early", rewind_iteration=5,
                  controls=("oneshot", "reinit"), train=TRAIN, seed=2),
    QuantConfig(target="weights", weight_bits=4, per_channel=False, weight_method="percentile", percentile=99.9,
                layer_bits=(("fc1", 2), ("fc3", 6))),
    PipelineConfig(sparsity=0.8, scope="global", method="uniform", bits=3, seed=1),
    PruneSettings(sparsity=0.7, granularity="nm", schedule="gradual", rounds=3, n=1, m=4, seed=5),
    Prune(sparsity=0.8, granularity="neuron", scope="global", schedule="iterative", finetune_epochs=2),
    FineTune(epochs=3, lr=0.01, optimizer="sgd"),
    Distill(T=2.5, alpha=0.3, epochs=4, lr=0.01, optimizer="sgd"),
    AdaRoundConfig(iterations=300, lr=0.05, reg=0.1, beta_start=10.0, beta_end=3.0, warm_start=0.1, max_rows=512,
                   inputs="quantized"),
    Quantize(mode="qat", weight_bits=3, per_channel=False, lsq=True, act_method="percentile"),
    Share(bits=3, centroid_epochs=0),
    Recipe("mnist1d", "mlp:64-32", 2, steps=(Prune(sparsity=0.5), Share(bits=2)), train=TRAIN, name="named"),
]
IDS = [type(c).__name__ for c in EXAMPLES]


def all_config_classes() -> set[type]:
    found, todo = set(), [Config]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("compress_core.") and sub not in found:
                if dataclasses.is_dataclass(sub):  # not a shared base such as experiments.Step
                    found.add(sub)
                todo.append(sub)
    return found


def test_every_config_class_is_covered_and_frozen():
    assert {type(c) for c in EXAMPLES} == all_config_classes()
    for cls in all_config_classes():
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls


@pytest.mark.parametrize("cfg", EXAMPLES, ids=IDS)
def test_json_round_trip(cfg):
    text = cfg.to_json()
    back = type(cfg).from_json(text)
    assert back == cfg and hash(back) == hash(cfg) and back.hash() == cfg.hash()
    assert back.to_json() == text
    assert json.loads(text) == cfg.to_dict()  # to_dict is already JSON: lists, not tuples
    assert text == json.dumps(json.loads(text), sort_keys=True)  # keys sorted
    for f in dataclasses.fields(cfg):  # the types come back, not just equal-looking values
        assert type(getattr(back, f.name)) is type(getattr(cfg, f.name)), f.name


def test_tuple_and_nested_fields_come_back_as_tuples_and_configs():
    q = QuantConfig.from_json(EXAMPLES[3].to_json())
    assert q.layer_bits == (("fc1", 2), ("fc3", 6)) and all(type(p) is tuple for p in q.layer_bits)
    assert q.bits_for("fc3") == 6
    lottery = LotteryConfig.from_dict(json.loads(EXAMPLES[2].to_json()))
    assert lottery.controls == ("reinit", "oneshot")  # canonical order
    assert isinstance(lottery.train, TrainConfig) and lottery.train == TRAIN
    # a reordered list of controls is the same setting, with the same cache entry
    d = EXAMPLES[2].to_dict()
    d["controls"] = ["reinit", "oneshot"]
    assert LotteryConfig.from_dict(d).hash() == EXAMPLES[2].hash()


@pytest.mark.parametrize("cfg", EXAMPLES, ids=IDS)
def test_hash_same_settings_same_hash_changed_field_different(cfg):
    h = cfg.hash()
    assert len(h) == 16 and int(h, 16) >= 0
    assert type(cfg).from_dict(cfg.to_dict()).hash() == h
    changed = {TrainConfig: dict(epochs=4), BaselineConfig: dict(seed=4), LotteryConfig: dict(rate=0.25),
               QuantConfig: dict(layer_bits=(("fc1", 3), ("fc3", 6))), PipelineConfig: dict(bits=2),
               PruneSettings: dict(sparsity=0.71), Prune: dict(sparsity=0.81), FineTune: dict(epochs=4),
               Distill: dict(alpha=0.31), AdaRoundConfig: dict(iterations=301),
               Quantize: dict(act_bits=4), Share: dict(bits=4), Recipe: dict(seed=3)}[type(cfg)]
    assert replace(cfg, **changed).hash() != h


def test_cache_hashes_are_those_of_the_old_code():
    """Baselines and lottery runs are cached on disk under these hashes: a change here invalidates every
    cached entry (bump the class's version instead, on purpose). Values computed by the code before the
    config base existed."""
    # explicit recipes (the recipe table may change; a changed recipe is a new baseline, on purpose)
    digits_mlp = TrainConfig(epochs=20, lr=1e-3, batch_size=64)
    assert BaselineConfig("digits", "mlp", 0, digits_mlp).hash() == "c4c2e365a9fc71ed"
    assert BaselineConfig("mnist1d", "cnn", 0, TrainConfig(epochs=40, lr=2e-3)).hash() == "5d7121b7cad09c81"
    assert BaselineConfig("moons", "mlp", 0, TrainConfig(epochs=60, lr=3e-3, batch_size=32)).hash() == \
        "ad54e257c54985bf"
    # lottery runs: version 2 on purpose (late rewinding trains T − k, issue 11); version 1 gave a90eb178ad3ef5ee
    # and 837fbbad39eb0f0a
    ticket = TrainConfig(epochs=15, lr=2e-3, batch_size=64, eval_every=10, rewind_iteration=20)
    assert LotteryConfig(dataset="digits", rounds=3, seed=2, train=ticket).hash() == "4532e6bf5f60534f"
    ticket = TrainConfig(epochs=10, lr=1e-2, batch_size=100, eval_every=10, rewind_iteration=20)
    assert LotteryConfig(rewind="early", rewind_iteration=5, controls=("oneshot",), train=ticket).hash() == \
        "18f9c3e26c887cbb"
    # the baseline cache's meta.json keeps the config with its version, as before
    assert BaselineConfig("d", "m", 0, TrainConfig()).cache_dict()["version"] == 1


def test_quant_json_is_the_old_cache_key():
    assert QuantConfig(layer_bits=(("fc1", 4),)).to_json() == (
        '{"act_bits": 8, "act_method": "minmax", "act_symmetric": false, "averaging_constant": 0.01, '
        '"calib_batch_size": 32, "layer_bits": [["fc1", 4]], "narrow_range": false, "per_channel": true, '
        '"percentile": 99.99, "target": "both", "weight_bits": 8, "weight_method": "minmax", '
        '"weight_symmetric": true}')


@pytest.mark.parametrize("cls, d, words", [
    (TrainConfig, {"epochs": "ten"}, r"TrainConfig\.epochs: expected a whole number, got 'ten'"),
    (TrainConfig, {"lr": True}, r"TrainConfig\.lr: expected a number, got True"),
    (LotteryConfig, {"train": {"batch_size": 1.5}}, r"LotteryConfig\.train\.batch_size: expected a whole number"),
    (LotteryConfig, {"controls": "reinit"}, r"LotteryConfig\.controls: expected a list"),
    (QuantConfig, {"layer_bits": [["fc1", "4"]]}, r"QuantConfig\.layer_bits\[0\]\[1\]: expected a whole number"),
    (QuantConfig, {"layer_bits": [["fc1"]]}, r"QuantConfig\.layer_bits\[0\]: expected 2 items"),
    (QuantConfig, {"per_channel": "yes"}, r"QuantConfig\.per_channel: expected true or false"),
    (PruneSettings, {"sparsity": 0.5, "sparsty": 0.9}, r"PruneSettings: unknown field\(s\) 'sparsty'"),
    (BaselineConfig, {"dataset": "digits", "model": "mlp", "seed": 0}, r"missing required field\(s\) 'train'"),
    (BaselineConfig, {"dataset": "digits", "model": "mlp", "seed": 0, "train": {}, "version": 0},
     r"BaselineConfig: settings of version 0; this code reads version 1"),
    (LotteryConfig, {"version": 1}, r"LotteryConfig: settings of version 1; this code reads version 2"),
    (PipelineConfig, [0.9, "layer"], r"PipelineConfig: expected a mapping"),
])
def test_bad_input_names_the_field(cls, d, words):
    with pytest.raises(ValueError, match=words):
        cls.from_dict(d)


def test_bad_json_and_validation_messages():
    with pytest.raises(ValueError, match="QuantConfig: not valid JSON"):
        QuantConfig.from_json("{target: both")
    # validation runs on from_dict too, with the classes' own messages
    with pytest.raises(ValueError, match=r"^Invalid training settings: learning rate must be > 0\.$"):
        TrainConfig.from_dict({"lr": 0.0})
    with pytest.raises(ValueError, match=r"^Invalid quantization settings: weight bits"):
        QuantConfig.from_dict({"weight_bits": 0})
    with pytest.raises(ValueError, match=r"^Target sparsity must be at least 0 % and below 100 % \(got 1\.0\)"):
        PipelineConfig.from_dict({"sparsity": 1.0})
    with pytest.raises(ValueError, match=r"^Unknown schedule 'cubic': use one of one-shot, iterative, gradual\.$"):
        PruneSettings(schedule="cubic")
    with pytest.raises(ValueError, match="Invalid lottery settings: scope must be one of layer, global"):
        LotteryConfig(scope="network")


def test_unknown_keys_ignored_only_where_they_were_before():
    # TrainConfig, LotteryConfig, QuantConfig and PipelineConfig read JSON with extra keys, as they always did
    for cls in (TrainConfig, LotteryConfig, QuantConfig, PipelineConfig):
        assert cls.from_dict({"not_a_field": 1}) == cls()
    # the baseline config carries its cache version in meta.json; it reads back
    b = EXAMPLES[1]
    assert BaselineConfig.from_dict(b.cache_dict()) == b
    with pytest.raises(ValueError, match="unknown field"):
        BaselineConfig.from_dict({**b.to_dict(), "epochs": 3})


@pytest.mark.parametrize("cls", sorted(all_config_classes(), key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_every_field_has_help_text(cls):
    text = cls.help_text()
    assert list(text) == [f.name for f in dataclasses.fields(cls)]
    assert all(len(t) >= 5 for t in text.values()), {k: t for k, t in text.items() if len(t) < 5}


def test_a_new_config_gets_everything_from_the_base():
    @dataclass(frozen=True)
    class Sweep(Config, label="sweep"):
        points: int = param(10, "how many sparsities to try")
        scopes: tuple[str, ...] = param(SCOPES, "where each ranking is made")

        def problems(self):
            if self.points < 1:
                yield "points must be ≥ 1"

    s = Sweep(points=3, scopes=("global",))
    assert Sweep.from_json(s.to_json()) == s and Sweep.help_text()["points"] == "how many sparsities to try"
    with pytest.raises(ValueError, match=r"^Invalid sweep settings: points must be ≥ 1\.$"):
        Sweep(points=0)
    with pytest.raises(ValueError, match="help text"):
        param(1)


def test_a_field_added_later_keeps_old_hashes_at_its_default():
    @dataclass(frozen=True)
    class Old(Config, version=1):
        points: int = param(10, "how many sparsities to try")

    @dataclass(frozen=True)
    class New(Config, version=1):
        points: int = param(10, "how many sparsities to try")
        warmup: int = param(0, "epochs before the first pruning step", hash_default=False)

    assert New(points=3).hash() == Old(points=3).hash() and New(points=3).cache_dict() == Old(points=3).cache_dict()
    assert New(points=3, warmup=2).hash() != Old(points=3).hash()
    assert New.from_json(New(points=3).to_json()) == New(points=3)  # to_dict/to_json keep every field
    assert "warmup" in New().to_dict() and "warmup" not in New().cache_dict()
    with pytest.raises(ValueError, match="needs a default"):
        param(help="a required field cannot be left out of the hash", hash_default=False)


def test_one_recipe_table():
    # the lottery recipes are overrides of the baseline table, not a second table
    assert ticket_train_config("mnist1d", "mlp") == TrainConfig(epochs=10, lr=1e-2, batch_size=100, eval_every=10,
                                                                rewind_iteration=20)  # the recipe of the benches
    assert ticket_train_config("digits", "mlp") == TrainConfig(epochs=15, lr=2e-3, batch_size=64, eval_every=10,
                                                               rewind_iteration=20)
    # other pairs train their tickets with the baseline recipe, measured at the end of the budget (no keep-best)
    assert ticket_train_config("digits", "cnn") == replace(TRAIN_RECIPES[("digits", "cnn")], keep_best=False)
    assert default_train_config("digits", "cnn") == TRAIN_RECIPES[("digits", "cnn")]
    assert all(r.keep_best for r in TRAIN_RECIPES.values()) and FALLBACK_RECIPE.keep_best  # baselines: best val
    assert default_train_config("moons", "mlp") == FALLBACK_RECIPE
    assert lottery_results.ticket_train_config is ticket_train_config
    for pair, changes in TICKET_OVERRIDES.items():  # an override changes the recipe: not a repeated entry
        assert pair in TRAIN_RECIPES and ticket_train_config(*pair) != default_train_config(*pair), pair


def test_scopes_defined_once():
    assert masks.SCOPES is SCOPES and pruning.SCOPES is SCOPES
    assert lottery_results.SCOPES is SCOPES and deep_compression.SCOPES is SCOPES
