"""AppTest: the home page and the shared sidebar."""
import json

from .conftest import metrics, open_app
from .conftest import open_app as _app


def test_home_renders_baseline():
    at = _app()
    assert not at.exception
    m = metrics(at)
    assert m["Parameters"] == "50,610" and float(m["Test accuracy"].rstrip("%")) > 95
    assert at.query_params["dataset"] == "digits" and at.query_params["model"] == "mlp"


def test_changing_dataset_and_model_rerenders():
    at = _app()
    at.sidebar.selectbox(key="dataset").set_value("moons").run()
    assert not at.exception
    assert metrics(at)["Parameters"] == "31,202"  # mlp on 2-D points
    assert at.sidebar.selectbox(key="model_pick").options == ["mlp", "tiny", "custom MLP"]
    at.sidebar.selectbox(key="model_pick").set_value("tiny").run()
    assert not at.exception
    assert metrics(at)["Parameters"] == "1,218"
    assert at.query_params["model"] == "tiny" and at.query_params["epochs"] == "60"
    at.sidebar.selectbox(key="dataset").set_value("mnist1d").run()
    # tiny is built for 2-D points only: switching to signals falls back to the first model that fits
    assert not at.exception and at.sidebar.selectbox(key="model_pick").value == "mlp"
    assert at.sidebar.selectbox(key="model_pick").options == ["mlp", "cnn", "custom MLP", "custom CNN"]


def test_url_restores_view_and_bad_values_fall_back():
    # "cnn" is not built for points and "banana" is no seed: both fall back to defaults
    at = _app(query={"dataset": "spirals", "model": "cnn", "seed": "banana"})
    assert not at.exception
    assert at.sidebar.selectbox(key="dataset").value == "spirals"
    assert at.sidebar.selectbox(key="model_pick").value == "mlp"
    assert at.sidebar.number_input(key="seed").value == 0


def test_home_links_every_topic_page_with_the_selection():
    at = _app(query={"dataset": "mnist1d", "model": "cnn"})
    assert not at.exception
    links = {el.proto.page: el.proto.query_string for el in at.get("page_link")}
    assert set(links) == {"pruning", "lottery", "quantization", "integer", "deep-compression", "compare",
                          "language-models"}
    assert all("dataset=mnist1d&model=cnn" in q for p, q in links.items() if p != "language-models")
    assert "dataset=pydoc&model=gpt" in links["language-models"]  # that page is about the GPT: it opens on it


def test_published_mnist1d_baselines_beside_ours():
    at = open_app(query={"dataset": "mnist1d", "model": "cnn"})
    box = next(i.value for i in at.info if "Greydanus 2020" in i.value)
    assert "MLP 68%" in box and "CNN 94%" in box and "Measured here, cnn" in box
    at = open_app()
    assert not any("Greydanus" in i.value for i in at.info)  # digits has no paper baseline to show


def test_each_tab_of_the_start_page():
    """The first tab reads the cache's record; the others load the data set and the network and draw them."""
    from .conftest import open_tab

    at = _app(query={"dataset": "moons", "model": "tiny"})
    assert [t.label for t in at.tabs] == ["The trained baseline", "The data", "The model", "Training"]
    assert not at.get("plotly_chart") and not at.dataframe  # the first tab: numbers only
    first = metrics(at)
    open_tab(at, "home_view", "The data")
    assert not at.exception and [c.proto.id for c in at.get("plotly_chart")]
    assert any("250 test" in m.value for m in at.markdown)
    open_tab(at, "home_view", "The model")
    table = at.dataframe[0].value
    assert list(table["layer"]) == ["flatten", "fc1", "relu1", "fc2", "relu2", "fc3"]
    assert int(table["parameters"].sum()) == int(first["Parameters"].replace(",", ""))
    open_tab(at, "home_view", "Training")
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "Training curves" in titles and "Decision boundary on the test points" in titles
    open_tab(at, "home_view", "The trained baseline")
    assert metrics(at) == first  # the record's numbers are the loaded baseline's: nothing changed by loading it


def test_training_settings_keep_their_values_while_their_box_is_closed():
    """The sidebar's boxes draw their widgets only when open; the values stay in the link and the selection."""
    at = _app(query={"dataset": "moons", "model": "tiny", "epochs": "7", "lr": "0.002"})
    assert not at.sidebar.slider and at.session_state["_selection"].train.epochs == 7
    at.run()  # a rerun with the box still closed
    assert at.query_params["epochs"] == "7" and at.session_state["_selection"].train.lr == 0.002
    at.session_state["sb_training"] = True
    at.run()
    assert at.sidebar.slider(key="epochs").value == 7 and at.sidebar.select_slider(key="lr").value == 0.002
    at.sidebar.slider(key="epochs").set_value(9).run()
    at.session_state["sb_training"] = False
    at.run()
    assert at.query_params["epochs"] == "9" and at.session_state["_selection"].train.epochs == 9
