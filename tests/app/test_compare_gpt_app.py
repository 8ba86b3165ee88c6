"""AppTest: the Compare page on a sized GPT (1 block, 32 wide: its baseline and every recipe run in seconds) —
the GPT's presets, a variant added and run, every view drawn in bits per character, the grid, the editor's choices."""
from compress_core.experiments import GPT_PRESETS

from .conftest import chart_text, open_app, open_tab

PAGE = "app_pages/compare.py"
GPT = {"dataset": "pydoc", "model": "gpt:1x32h2"}


def _table(at):
    return at.dataframe[0].value


def test_the_compare_page_runs_recipes_on_the_gpt_in_bits_per_character():
    at = open_app(PAGE, GPT)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not any("works on the classifiers" in i.value for i in at.info)  # the guard is gone
    assert list(at.selectbox(key="cmp_preset").options) == list(GPT_PRESETS)
    table = _table(at)
    assert list(table["variant"]) == ["W4 weight-only", "W8A8", "magnitude 50 % + fine-tune"]
    assert "test accuracy" not in table and "integer accuracy" not in table
    assert ((table["bits / char"] > 1) & (table["bits / char"] < 6.7)).all()
    assert (table["× smaller"] > 1).all()
    assert any("bits per character" in c.value and "Float baseline" in c.value for c in at.caption)
    spec = chart_text(at.get("plotly_chart")[0])
    assert "Bits per character vs size" in spec and "bits per character (test, lower is better)" in spec
    # add a preset: one of four heads cut, then fine-tuned
    at.selectbox(key="cmp_preset").set_value("1 of 4 heads cut + fine-tune").run()
    at.button(key="cmp_add_variant").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = _table(at)
    assert table["variant"].iloc[-1] == "1 of 4 heads cut + fine-tune"
    assert table["shrunk ms"].iloc[-1] > 0  # the heads were cut out: a smaller dense network ran
    # the editor offers the GPT's heads as a granularity
    gran = [w for w in at.selectbox if w.key.endswith("_granularity")][-1]
    assert "attention head (cut out)" in gran.options and gran.value == "head"
    # every view draws
    open_tab(at, "cmp_view", "Latency and energy")
    assert not at.exception
    assert [c.key for c in at.get("plotly_chart")] == ["cmp_latency", "cmp_energy"]
    assert "bits per character" in chart_text(at.get("plotly_chart")[0])
    open_tab(at, "cmp_view", "Per layer")
    assert not at.exception
    layers = at.dataframe[1].value if len(at.dataframe) > 1 else at.dataframe[0].value
    assert {"block1.attn.q", "block1.mlp.fc2", "embed.tok", "ln_f", "head"} <= set(layers["layer"])
    assert any("does not apply to the GPT" in c.value for c in at.caption)
    assert not any(t.label == "Decision boundaries" for t in at.tabs)


def test_the_grid_runs_on_the_gpt_in_bits_per_character():
    at = open_tab(open_app(PAGE, GPT), "cmp_view", "Sparsity × bit width")
    at.multiselect(key="cmp_grid_sp").set_value([50]).run()
    at.multiselect(key="cmp_grid_bits").set_value([8, 2]).run()
    at.number_input(key="cmp_grid_ep").set_value(0).run()
    at.toggle(key="cmp_grid_on").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    heat = [c for c in at.get("plotly_chart") if "Bits per character over sparsity" in chart_text(c)]
    assert len(heat) == 1 and "weights only" in chart_text(heat[0])


def test_a_classifier_does_not_offer_attention_heads():
    at = open_app(PAGE, {"cmp_view": "Runs"})
    assert not at.exception
    for w in at.selectbox:
        if w.key.endswith("_granularity"):
            assert "attention head (cut out)" not in w.options and "2:4" in w.options


def test_the_drop_debugger_on_a_classifier_variant_reverts_a_layer_live():
    at = open_app(PAGE)
    open_tab(at, "cmp_view", "Which layer broke it?")
    assert not at.exception
    names = at.selectbox(key="cmp_dbg_of").options
    at.selectbox(key="cmp_dbg_of").set_value(names.index(next(n for n in names if "int4" in n))).run()
    at.toggle(key="cmp_dbg_on").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [c.key for c in at.get("plotly_chart")] == ["cmp_dbg_chart"]
    assert "Which layer broke it? Error per layer" in chart_text(at.get("plotly_chart")[0])
    table = next(d.value for d in at.dataframe if "accumulated_sqnr_db" in d.value)
    assert list(table["layer"]) == ["fc1", "fc2", "fc3"] and table["compressed"].all()
    assert table["only_change_pts"].notna().all()
    m = {x.label: x.value for x in at.metric}
    assert m["With 0 layer(s) reverted"] == m["The variant"]
    # putting every layer back gives the float model's score exactly
    for layer in ("fc1", "fc2", "fc3"):
        at.toggle(key=f"cmp_dbg_rev_{layer}").set_value(True).run()
        assert not at.exception
    m = {x.label: x.value for x in at.metric}
    assert m["With 3 layer(s) reverted"] == m["Float baseline"]


def test_the_debugger_refuses_a_structured_variant_in_plain_words():
    at = open_app(PAGE, GPT)
    at.selectbox(key="cmp_preset").set_value("1 of 4 heads cut + fine-tune").run()
    at.button(key="cmp_add_variant").click().run()
    open_tab(at, "cmp_view", "Which layer broke it?")
    at.selectbox(key="cmp_dbg_of").set_value(3).run()
    assert not at.exception
    assert any("Structured pruning cut neurons or heads out" in i.value for i in at.info)


def test_the_drop_debugger_runs_on_a_gpt_variant():
    at = open_app(PAGE, GPT)
    open_tab(at, "cmp_view", "Which layer broke it?")
    at.selectbox(key="cmp_dbg_of").set_value(0).run()  # W4 weight-only
    at.toggle(key="cmp_dbg_on").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "accumulated_sqnr_db" in d.value)
    assert "block1.mlp.fc2" in list(table["layer"])
    assert "only_change_pts" not in table and table["only_bits"].notna().all()  # scored in bits/char, not accuracy
    at.toggle(key="cmp_dbg_rev_block1.mlp.fc2").set_value(True).run()
    assert not at.exception
    m = {x.label: x.value for x in at.metric}
    assert m["With 1 layer(s) reverted"].endswith("bits/char") and m["Float baseline"].endswith("bits/char")


def test_the_budget_search_from_a_quantized_classifier_variant():
    from compress_core.experiments import Quantize
    from ui.topics.compare import encode

    link = encode([{"name": "w2", "steps": (Quantize(weight_bits=2),)}])
    at = open_app(PAGE, {"cmp": link})
    open_tab(at, "cmp_view", "Accuracy budget")
    assert not at.exception
    at.select_slider(key="cmp_budget_pts").set_value(1.0).run()
    at.toggle(key="cmp_budget_on").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    m = {x.label: x.value for x in at.metric}
    assert int(m["Stored bytes"].replace(",", "")) > 0 and m["Test accuracy"].endswith("%")
    settings = next(d.value for d in at.dataframe if "weight bits (32 = back to float)" in d.value)
    assert list(settings["layer"]) == ["fc1", "fc2", "fc3"]
    assert any("On the test split" in md.value for md in at.markdown)


def test_the_budget_search_explains_which_variants_it_starts_from():
    at = open_app(PAGE, GPT)
    open_tab(at, "cmp_view", "Accuracy budget")
    names = at.selectbox(key="cmp_budget_of").options
    at.selectbox(key="cmp_budget_of").set_value(next(i for i, n in enumerate(names) if "fine-tune" in n)).run()
    assert not at.exception
    assert any("The budget search starts from a variant of one post-training Quantize step" in i.value
               for i in at.info)


def test_the_gpt_budget_is_in_bits_per_character_from_a_quantized_variant():
    at = open_app(PAGE, {**GPT, "cmp_budget_bits": "0.05"})
    open_tab(at, "cmp_view", "Accuracy budget")
    at.selectbox(key="cmp_budget_of").set_value(0).run()  # W4 weight-only
    assert at.select_slider(key="cmp_budget_bits").label == "Budget (bits per character)"
    at.toggle(key="cmp_budget_on").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    m = {x.label: x.value for x in at.metric}
    assert float(m["Test bits / char"]) > 1 and float(m["Validation bits / char"]) > 1
    settings = next(d.value for d in at.dataframe if "weight bits (32 = back to float)" in d.value)
    assert "block1.mlp.fc2" in list(settings["layer"])
    assert any("budget of 0.05 bits/char as tolerance" in md.value for md in at.markdown)


def test_the_budget_search_prunes_the_gpt_per_layer():
    from compress_core.experiments import Prune
    from ui.topics.compare import encode

    link = encode([{"name": "half", "steps": (Prune(sparsity=0.5, finetune_epochs=0),)}])
    at = open_app(PAGE, {**GPT, "cmp": link, "cmp_budget_bits": "0.2"})
    open_tab(at, "cmp_view", "Accuracy budget")
    at.toggle(key="cmp_budget_on").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    settings = next(d.value for d in at.dataframe if "pruning rate" in d.value)
    assert "block1.mlp.fc" in list(settings["layer"])
    assert "Test bits / char" in {x.label for x in at.metric}
    assert any("by the bits per character each adds alone" in c.value for c in at.caption)


def test_switching_from_the_gpt_to_a_classifier_removes_the_head_variant_in_words():
    at = open_app(PAGE, GPT)
    at.selectbox(key="cmp_preset").set_value("1 of 4 heads cut + fine-tune").run()
    at.button(key="cmp_add_variant").click().run()
    at.sidebar.selectbox(key="dataset").set_value("digits").run()
    assert not at.exception
    assert any("does not run on" in w.value and "attention heads" in w.value for w in at.warning)
    assert "1 of 4 heads cut + fine-tune" not in list(_table(at)["variant"])


def test_a_fine_tuned_gpt_variant_gets_its_dense_control_in_one_click():
    """The GPT's baseline stops after a few epochs, so a variant that fine-tunes can beat it by training alone: the
    dense control, one click away, trains the float GPT as long and compresses nothing."""
    at = open_app(PAGE, GPT)
    dense = [b for b in at.button if b.key.startswith("cmp_dense_")]
    assert len(dense) == 1  # of the three default variants only "magnitude 50 % + fine-tune" trains
    dense[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["variant"])[-1] == "magnitude 50 % + fine-t… (dense control)"  # names fit in 40 characters
    assert list(table["recipe"])[-1] == "fine-tune 1 ep" and float(table["bits / char"].iloc[-1]) > 1
