"""AppTest: the Pruning page's "Which layer broke it?" and "Meet an accuracy budget" views (issue 26)."""
import json

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.pruning import PruneSettings, prune_with
from compress_core.recover import DropDebugger, prune_budget_search
from compress_core.settings import default_train_config

from .conftest import metrics, open_app, open_tab

PAGE = "app_pages/pruning.py"


def titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]


def test_toggle_puts_a_layer_back_and_the_accuracy_is_the_librarys():
    at = open_tab(open_app(PAGE, query={"pr_sparsity": "95.0"}), "pr_view", "Which layer broke it?")
    assert not at.exception and not at.error
    assert "Which layer broke it? Error per layer" in titles(at)
    assert any(t.startswith(("Flipped examples",)) or "flipped examples" in t for t in titles(at))
    table = next(df.value for df in at.dataframe if "SQNR alone (dB)" in df.value.columns)
    assert list(table["layer"]) == ["fc1", "fc2", "fc3"]
    assert any("first diverging layer" in df.value.columns for df in at.dataframe)
    before = metrics(at)["Accuracy, chosen layers dense"]
    assert before == metrics(at)["Accuracy, pruned"]  # nothing toggled yet
    at.toggle(key="pr_dense_fc1").set_value(True).run()
    assert not at.exception and not at.error
    # the library's value for the same pruned model and the same layer back to dense
    ds, b = load_dataset("digits"), get_baseline("digits", "mlp")
    res = prune_with(b.model, ds, PruneSettings(sparsity=0.95, output_scale=0.5))
    want = DropDebugger(b.model, res.model, ds.x_test, ds.y_test).revert(["fc1"]).accuracy
    assert metrics(at)["Accuracy, chosen layers dense"] == f"{want:.2%}"
    assert metrics(at)["Accuracy, chosen layers dense"] != before


def test_budget_search_finishes_with_a_verdict():
    at = open_app(PAGE, query={"dataset": "moons", "model": "tiny", "pr_sparsity": "90.0",
                               "pr_view": "Meet an accuracy budget", "pr_budget": "1.0"})
    assert not at.exception and not at.error
    assert "Per-layer rates the search chose" in titles(at)
    verdict = [m.value for m in list(at.success) + list(at.error) if "On the test split" in m.value]
    assert verdict
    ds, b = load_dataset("moons"), get_baseline("moons", "tiny")
    want = prune_budget_search(b.model, ds, sparsity=0.9, budget_pts=1.0, step=0.1)
    assert want.verdict() in verdict[0]
    assert metrics(at)["Size found"] == f"{want.bytes / 1024:.1f} KB"
    assert "validation" in " ".join(c.value for c in at.caption)


def test_gpt_budget_is_in_bits_per_character_and_reads_what_the_library_finds():
    from dataclasses import replace

    from ui.topics.pruning_recover import GPT_WINDOWS

    at = open_app(PAGE, {"dataset": "pydoc", "model": "gpt:1x32h2", "pr_sparsity": "70.0", "pr_budget_step": "0.2",
                         "pr_view": "Meet an accuracy budget", "pr_budget_bits": "0.1"})
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.select_slider(key="pr_budget_bits").label == "Budget: most bits per character to add"
    ds = load_dataset("pydoc")
    b = get_baseline("pydoc", "gpt:1x32h2", train_config=default_train_config("pydoc", "gpt:1x32h2"))
    n = GPT_WINDOWS
    sub = replace(ds, x_val=ds.x_val[:n], y_val=ds.y_val[:n], x_test=ds.x_test[:n], y_test=ds.y_test[:n])
    want = prune_budget_search(b.model, sub, sparsity=0.7, budget_pts=0.1, step=0.2, unit="bits")
    verdict = [m.value for m in list(at.success) + list(at.error) if "On the test split" in m.value]
    assert verdict and want.verdict() in verdict[0] and "bits/char" in verdict[0]
    m = metrics(at)
    assert m["Test bits / char (reported)"] == f"{want.test_bpc:.3f}"
    assert m["Size found"] == f"{want.bytes / 1024:.1f} KB"


def test_gpt_per_layer_view_draws_with_its_changed_characters():
    at = open_app(PAGE, {"dataset": "pydoc", "model": "gpt", "pr_sparsity": "50.0",
                         "pr_view": "Which layer broke it?"})
    assert not at.exception and not at.error
    assert "Which layer broke it? Error per layer" in titles(at)
    assert any("classifiers" in i.value for i in at.info)
    assert any("held-out characters changed their most likely prediction" in m.value for m in at.markdown)
    m = metrics(at)
    assert {"Bits / char, baseline", "Bits / char, pruned", "Bits / char, chosen layers dense"} <= set(m)
    at.toggle(key="pr_dense_block1.mlp.fc").set_value(True).run()
    assert not at.exception and metrics(at)["Bits / char, chosen layers dense"] != m["Bits / char, chosen layers dense"]


def test_both_views_on_an_uploaded_csv():
    from .test_uploads_app import _csv, _upload_csv

    at = _upload_csv(open_app(), _csv(n=300))
    at.switch_page(PAGE).run()
    for view in ("Which layer broke it?", "Meet an accuracy budget"):
        open_tab(at, "pr_view", view)
        assert not at.exception and not at.error, (view, [e.value for e in at.error])
    assert "Per-layer rates the search chose" in titles(at)
    open_tab(at, "pr_view", "Which layer broke it?")
    assert "Which layer broke it? Error per layer" in titles(at)
