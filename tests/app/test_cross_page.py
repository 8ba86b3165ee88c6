"""Issue 10: the same selection and setting give the same numbers wherever they appear."""
from .conftest import metrics, open_app, open_tab, table_with


def test_quantization_and_integer_pages_agree_on_accuracy_scales_and_zero_points():
    """Default 8-bit setting on digits·mlp: per-channel symmetric weights, affine 8-bit activations, min-max on the
    first 256 training examples, on both pages."""
    q = open_app("app_pages/quantization.py", {"q_qatcurve": "0"})
    i = open_app("app_pages/integer.py")
    assert not q.exception and not i.exception
    assert metrics(q)["Quantized accuracy"] == metrics(i)["Fake-quant acc."]
    assert metrics(q)["Float accuracy"] == metrics(i)["Float acc."]
    rep = table_with(open_tab(q, "q_view", "Error per layer"), "tensor")
    layers = table_with(open_tab(i, "int_view", "Every layer of the integer program"), "S_in")
    assert not q.exception and not i.exception
    for layer in layers["layer"]:
        row = layers[layers["layer"] == layer].iloc[0]
        q_in = rep[(rep["layer"] == layer) & (rep["tensor"] == "input")]
        q_out = rep[(rep["layer"] == layer) & (rep["tensor"] == "output")]
        if len(q_in):  # the report lists a layer's input where it is quantized on its own (the first layer)
            assert abs(q_in["scale"].iloc[0] - row["S_in"]) <= 1e-9 and q_in["zero_point"].iloc[0] == row["Z_in"]
        assert abs(q_out["scale"].iloc[0] - row["S_out"]) <= 1e-9 and q_out["zero_point"].iloc[0] == row["Z_out"]


def test_pruning_and_home_pages_agree_on_the_baseline():
    home, pruning = open_app(), open_app("app_pages/pruning.py", {"pr_sparsity": "0.0"})
    acc = metrics(home)["Test accuracy"]
    assert metrics(pruning)["Test accuracy"] == acc  # nothing pruned: the baseline itself


def test_one_inference_is_timed_alike_and_reads_alike_on_the_lesson_and_compare(monkeypatch, tmp_path):
    """Issue 28, item 2: the lesson's "Time / inference (batch 1)" and Compare's "float ms" are the same quantity
    measured the same way (one example, ``LATENCY_REPEATS`` calls, ``time_call``'s median): with the clock replaced
    by a fixed reading, both pages show that reading; and every latency says its batch."""
    import importlib

    from compress_core import lesson
    from compress_core.pruning.formats import LATENCY_REPEATS

    runs = importlib.import_module("compress_core.experiments.run")  # the module (the package exports run())

    calls = []

    def fixed(fn, *, repeats=LATENCY_REPEATS, **kw):  # the same call as the real one, without the clock's noise
        fn()
        calls.append(repeats)
        return {"median_ms": 0.0417, "p95_ms": 0.05, "min_ms": 0.04}

    monkeypatch.setattr(lesson, "time_call", fixed)
    monkeypatch.setattr(runs, "time_call", fixed)
    monkeypatch.setenv("COMPRESS_LAB_CACHE", str(tmp_path))  # runs measured now, not read from the run cache
    seed = {"seed": "7"}  # the lesson memoizes its step-1 cost per seed: one no other test uses
    step1 = open_app("app_pages/lesson.py", {**seed, "lesson_step": "1"})
    cmp = open_app("app_pages/compare.py", seed)
    assert not step1.exception and not cmp.exception
    assert metrics(step1)["Time / inference (batch 1)"] == "42 µs"
    table = cmp.dataframe[0].value
    assert (table["float ms"] == 0.0417).all()
    assert calls and set(calls) <= {LATENCY_REPEATS, lesson.SPEED_REPEATS}
    assert any("one inference (batch 1)" in c.value for c in cmp.caption)
    step4 = open_app("app_pages/lesson.py", {**seed, "lesson_step": "4"})
    assert any(f"a batch of {lesson.SPEED_BATCH}" in c.value for c in step4.caption)
    assert any(f"Measured forward time: a batch of {lesson.SPEED_BATCH}" in c.proto.spec
               for c in step4.get("plotly_chart"))


def test_the_language_model_reads_the_same_bits_per_character_on_every_page():
    """The GPT's float score: the start page, the Language models page, Pruning at (almost) no sparsity and
    Quantization's float column show the same bits per character and the same next-character accuracy."""
    gpt = {"dataset": "pydoc", "model": "gpt"}
    home = open_app(None, gpt)
    lmp = open_app("app_pages/language_models.py", gpt)
    assert not home.exception and not lmp.exception
    bpc = metrics(home)["Bits / char"]
    assert metrics(lmp)["Float bits / char"] == bpc
    acc = {name: float(metrics(at)["Next character right"].rstrip("%")) for name, at in (("home", home), ("lm", lmp))}
    assert round(acc["home"], 1) == acc["lm"]  # 62.87 % there, 62.9 % here: the same number at two precisions
    pruning = open_app("app_pages/pruning.py", {**gpt, "pr_sparsity": "0.0"})
    assert not pruning.exception and metrics(pruning)["Bits / char"] == bpc  # nothing pruned: the baseline itself
    quant = open_app("app_pages/quantization.py", gpt)
    assert not quant.exception and metrics(quant)["Float bits / char"] == bpc
