"""The Deep compression page under AppTest: stages, metrics, controls, URL state and bad input."""
from .conftest import metrics, open_app

PAGE = "app_pages/deep_compression.py"
FAST = {"dc_sparsity": "80.0", "dc_rounds": "1", "dc_epochs": "1", "dc_bits": "3", "dc_cepochs": "0"}


def _stages(at):
    return list(at.dataframe[0].value["stage"])


def test_runs_and_shows_stages_metrics_and_charts():
    at = open_app(PAGE, FAST)
    assert not at.exception
    assert _stages(at) == ["dense", "pruned 1/1", "k-means k=8"]
    m = metrics(at)
    dense, final = float(m["Dense size"].split()[0]), float(m["Final size"].split()[0])
    assert final < dense / 5  # 80 % pruned and 3-bit codes
    assert m["Final accuracy"].endswith("%")
    table = at.dataframe[0].value
    assert list(table["bytes"]) == sorted(table["bytes"], reverse=True)
    assert any("1070 KB → 27 KB" in i.value for i in at.info)  # the published figures, labelled
    formula = at.dataframe[1].value
    assert list(formula["layer"]) == ["fc1", "fc2", "fc3"] and (formula["k"] == 8).all()
    assert (abs(formula["measured ×"] - formula["formula ×"]) < 0.05).all()


def test_switch_to_uniform_and_url_remembers():
    at = open_app(PAGE, FAST)
    at.radio(key="dc_method").set_value("uniform").run()
    assert not at.exception
    assert _stages(at)[-1] == "uniform 3-bit"
    assert at.query_params["dc_method"] == ["uniform"] or at.query_params["dc_method"] == "uniform"
    at.selectbox(key="dc_layer").set_value("fc2").run()
    assert not at.exception


def test_full_sparsity_gives_plain_message():
    at = open_app(PAGE, dict(FAST, dc_sparsity="100.0"))
    assert not at.exception
    assert any("100 % sparsity" in w.value for w in at.warning)
    assert not at.dataframe


def test_zero_sparsity_explains_index_cost():
    at = open_app(PAGE, dict(FAST, dc_sparsity="0.0", dc_method="uniform", dc_bits="1"))
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "costs more than dense storage" in infos and "1-bit" in infos


def test_a_layer_that_sharing_makes_bigger_is_explained():
    at = open_app(PAGE, dict(FAST, dataset="moons", model="tiny"))
    assert not at.exception
    growing = [c.value for c in at.caption if "sharing makes the layer *bigger*" in c.value]
    table = next(df.value for df in at.dataframe if "with index ×" in df.value.columns)
    below = table[table["measured ×"] < 1]["layer"].tolist()
    assert bool(growing) == bool(below) and all(layer in growing[0] for layer in below)
    fair = [i.value for i in at.info if "Fair comparison" in i.value]
    assert fair and "points** from it" in fair[0]  # the fine-tuning's control is shown
