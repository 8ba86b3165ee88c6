"""Architectures sized in the sidebar: the controls, their plain-words limits, the link, and every page on them."""
import pytest

from .conftest import open_app

PAGES = ["app_pages/home.py", "app_pages/pruning.py", "app_pages/lottery.py", "app_pages/quantization.py",
         "app_pages/integer.py", "app_pages/deep_compression.py", "app_pages/compare.py"]


def test_a_link_with_a_sized_mlp_opens_it_and_the_sizes_field_shows_it():
    at = open_app(None, {"model": "mlp:64-32"})
    assert not at.exception
    assert at.session_state["model"] == "mlp:64-32"
    assert at.sidebar.selectbox(key="model_pick").value == "custom MLP"
    assert at.sidebar.text_input(key="arch").value == "64-32"
    assert at.sidebar.text_input(key="arch").label == "Hidden widths"
    assert any("Your MLP: 64 → 32 hidden units, 6,570 parameters" in c.value for c in at.sidebar.caption)


def test_sizes_beyond_the_limits_are_refused_in_plain_words_and_the_model_stays():
    at = open_app(None, {"model": "mlp:64-32"})
    for sizes, words in (("2000, 10", "2 to 1024 units"), ("64 64 64 64 64", "1 to 4 hidden layers"),
                         ("1000-1000", "1,000,000"), ("sixty", "Cannot read the sizes")):
        at.sidebar.text_input(key="arch").set_value(sizes).run()
        assert not at.exception
        assert any(words in e.value and "Still using mlp:64-32" in e.value for e in at.sidebar.error), sizes
        assert at.session_state["model"] == "mlp:64-32"
    at.sidebar.text_input(key="arch").set_value("128, 64").run()  # commas and spaces are read too
    assert at.session_state["model"] == "mlp:128-64" and not at.sidebar.error
    assert at.query_params["model"] == ["mlp:128-64"] or at.query_params["model"] == "mlp:128-64"


def test_custom_cnn_starts_from_its_own_sizes_and_is_not_offered_for_points():
    at = open_app(None, {"model": "mlp:64-32"})
    at.sidebar.selectbox(key="model_pick").set_value("custom CNN").run()
    assert at.session_state["model"] == "cnn:8k3-16k3" and not at.sidebar.error
    assert at.sidebar.text_input(key="arch").label == "Conv stages"
    at.sidebar.text_input(key="arch").set_value("4k3-8k5-8k3-8k3").run()  # 4 poolings of an 8-pixel image
    assert any("at most 3" in e.value for e in at.sidebar.error)
    at.sidebar.selectbox(key="dataset").set_value("moons").run()
    assert not at.exception
    assert "custom CNN" not in at.sidebar.selectbox(key="model_pick").options
    assert at.session_state["model"] == "mlp"


def test_a_sized_gpt_names_its_sizes_field_for_what_it_holds():
    at = open_app(None, {"model": "gpt:1x32h2", "dataset": "pydoc"})
    assert not at.exception and at.sidebar.selectbox(key="model_pick").value == "custom GPT"
    box = at.sidebar.text_input(key="arch")
    assert box.value == "1x32h2" and box.label == "Blocks × width, heads"  # not the CNN's "Conv stages"


def test_a_hand_edited_impossible_model_in_a_link_falls_back():
    at = open_app(None, {"model": "cnn:99k2", "dataset": "digits"})
    assert not at.exception and at.session_state["model"] == "mlp"


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("dataset,model", [("digits", "cnn:4k3-8k5"), ("mnist1d", "mlp:48-24-12")])
def test_every_page_runs_on_a_sized_architecture(page, dataset, model):
    at = open_app(page, {"dataset": dataset, "model": model})
    assert not at.exception, at.exception
    assert at.session_state["model"] == model
    assert not at.error, [e.value for e in at.error]
