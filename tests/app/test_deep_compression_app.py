"""The Deep compression page under AppTest: stages (the file last), metrics, the download, controls, the preset,
URL state and bad input."""
from .conftest import gap_points, metrics, open_app, open_tab

PAGE = "app_pages/deep_compression.py"
FAST = {"dc_sparsity": "80.0", "dc_rounds": "1", "dc_epochs": "1", "dc_bits": "3", "dc_cepochs": "0"}
STAGES, LAYER, FORMULA, FILE = ("Stage by stage", "Shared values of one layer", "Han's formula vs measured",
                                "The file: relative indices and Huffman coding")  # the page's tabs (dc_view)


def _stages(at):
    return list(at.table[0].value["stage"])


def _num(text: str) -> float:
    """A number of the stage table, which shows text ("202,440")."""
    return float(text.replace(",", ""))


def _file_download(at):
    return next(d for d in at.get("download_button") if d.proto.label.startswith("Download the compressed file"))


def test_runs_and_shows_stages_metrics_and_charts():
    at = open_app(PAGE, FAST)
    assert not at.exception
    assert _stages(at) == ["dense", "pruned 1/1", "k-means k=8", "Huffman-coded file"]
    m = metrics(at)
    dense, final = float(m["Dense size"].split()[0]), float(m["File size"].split()[0])
    assert final < dense / 5  # 80 % pruned and 3-bit codes
    assert m["File accuracy"].endswith("%")
    sizes = [_num(b) for b in at.table[0].value["bytes"]]
    assert sizes == sorted(sizes, reverse=True)
    assert any("1070 KB → 27 KB" in i.value for i in at.info)  # the published figures, labelled
    open_tab(at, "dc_view", FORMULA)
    assert not at.exception
    formula = next(df.value for df in at.dataframe if "formula ×" in df.value.columns)
    assert list(formula["layer"]) == ["fc1", "fc2", "fc3"] and (formula["k"] == 8).all()
    assert (abs(formula["measured ×"] - formula["formula ×"]) < 0.05).all()


def test_the_file_stage_its_download_and_the_published_table():
    at = open_app(PAGE, FAST)
    assert not at.exception
    table = at.table[0].value
    file_bytes = int(_num(table["bytes"].iloc[-1]))
    assert _file_download(at).proto.label == f"Download the compressed file ({file_bytes:,} bytes)"
    assert abs(float(metrics(at)["File size"].split()[0]) - file_bytes / 1024) < 0.01
    published = next(t.value for t in at.table if "Han et al. (published)" in t.value.columns)
    assert list(published["stage"]) == ["dense float32", "pruned", "shared / quantized", "Huffman-coded file"]
    assert "27 KB (40×)" in published["Han et al. (published)"].iloc[-1]
    seen = {}  # each tab's markdown and info boxes (the explainer's markdown included)
    for tab in (STAGES, LAYER, FORMULA, FILE):
        open_tab(at, "dc_view", tab)
        assert not at.exception
        seen[tab] = " ".join(m.value for m in at.markdown) + " ".join(i.value for i in at.info)
    per_layer = next(df.value for df in at.dataframe if "index bits" in df.value.columns)
    assert list(per_layer["layer"]) == ["fc1", "fc2", "fc3"]
    text = " ".join(m.value for m in at.markdown)
    assert "filler zero" in text and f"{file_bytes:,} bytes" in text
    everything = " ".join(seen.values())  # every tab, the explainer's markdown included
    assert "Relative indices with filler zeros" in text or "relative indices with filler zeros" in text
    assert "does not do" not in everything and "this page does neither" not in everything  # no Huffman: gone


def test_han_preset_reaches_fifty_times():
    at = open_app(PAGE, FAST)
    at.button(key="dc_preset").click().run()
    assert not at.exception
    assert at.select_slider(key="dc_sparsity").value == 97.0 and at.radio(key="dc_scope").value == "global"
    assert at.slider(key="dc_epochs").value == 8 and at.select_slider(key="dc_lr").value == 6e-3
    final = at.table[0].value.iloc[-1]
    assert final["stage"] == "Huffman-coded file" and _num(final["× smaller than dense"]) >= 50
    assert at.query_params["dc_sparsity"] in ("97.0", ["97.0"])  # the preset's settings are in the link


def test_huffman_off_gives_a_bigger_fixed_width_file():
    on = open_app(PAGE, FAST).table[0].value.iloc[-1]
    at = open_app(PAGE, dict(FAST, dc_huffman="0", dc_index_bits="5"))
    assert not at.exception
    off = at.table[0].value.iloc[-1]
    assert off["stage"] == "file, fixed-width codes" and _num(off["bytes"]) > _num(on["bytes"])


def test_switch_to_uniform_and_url_remembers():
    at = open_app(PAGE, FAST)
    at.radio(key="dc_method").set_value("uniform").run()
    assert not at.exception
    assert _stages(at)[-2:] == ["uniform 3-bit", "Huffman-coded file"]
    assert at.query_params["dc_method"] == ["uniform"] or at.query_params["dc_method"] == "uniform"
    open_tab(at, "dc_view", LAYER)
    assert not at.exception
    at.selectbox(key="dc_layer").set_value("fc2").run()
    assert not at.exception


def test_full_sparsity_gives_plain_message():
    at = open_app(PAGE, dict(FAST, dc_sparsity="100.0"))
    assert not at.exception
    assert any("100 % sparsity" in w.value for w in at.warning)
    assert not at.dataframe and not at.table


def test_zero_sparsity_explains_index_cost():
    at = open_app(PAGE, dict(FAST, dc_sparsity="0.0", dc_method="uniform", dc_bits="1"))
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "costs more than dense storage" in infos and "1-bit" in infos


def test_a_layer_that_sharing_makes_bigger_is_explained():
    at = open_app(PAGE, dict(FAST, dataset="moons", model="tiny", dc_view=FORMULA))
    assert not at.exception
    growing = [c.value for c in at.caption if "sharing makes the layer *bigger*" in c.value]
    table = next(df.value for df in at.dataframe if "with index ×" in df.value.columns)
    below = table[table["measured ×"] < 1]["layer"].tolist()
    assert bool(growing) == bool(below) and all(layer in growing[0] for layer in below)
    fair = [i.value for i in at.info if "Fair comparison" in i.value]
    assert fair and gap_points(fair[0]) is not None  # the fine-tuning's control is shown, its gap in words


def test_the_preset_button_sets_every_setting_that_han_settings_changes():
    from compress_core.deep_compression import HAN_SETTINGS, PipelineConfig
    from ui.topics.deep_compression import PRESET

    widget = {"sparsity": "dc_sparsity", "scope": "dc_scope", "rounds": "dc_rounds", "epochs": "dc_epochs",
              "lr": "dc_lr", "method": "dc_method", "bits": "dc_bits", "centroid_epochs": "dc_cepochs",
              "bias_bits": "dc_bias_bits", "huffman": "dc_huffman", "index_bits": "dc_index_bits"}
    default, han = PipelineConfig().to_dict(), HAN_SETTINGS.to_dict()
    assert {k for k in han if han[k] != default[k]} - {"seed"} <= set(widget)  # nothing the page cannot show
    for field, key in widget.items():
        assert PRESET[key] == (han[field] * 100 if field == "sparsity" else han[field])
