"""Uploads in the app: a CSV and weights become the data set and baseline of every page; bad files get a message
and lose nothing; another session never sees them."""
import io

import numpy as np
import torch

from compress_core import evaluate, get_baseline, load_dataset

from .conftest import chart_text, metrics, open_app, open_tab

PAGES = ["app_pages/pruning.py", "app_pages/lottery.py", "app_pages/quantization.py", "app_pages/integer.py",
         "app_pages/deep_compression.py", "app_pages/compare.py"]



def opened(at):
    """The sidebar's “Your own data and weights” box opened (its uploaders are drawn only when open)."""
    if not at.session_state["sb_uploads"]:
        at.session_state["sb_uploads"] = True
        at.run()
    return at

def _csv(n=90, f=5, classes=3, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, f)) + y[:, None]
    head = ",".join([f"f{i}" for i in range(f)] + ["kind"])
    return (head + "\n" + "\n".join(",".join(map(str, [*r.round(3), f"k{c}"])) for r, c in zip(x, y))).encode()


def _upload_csv(at, data: bytes, label: str = "kind"):
    opened(at).sidebar.file_uploader(key="up_data").set_value(("mine.csv", data, "text/csv")).run()
    at.sidebar.selectbox(key="up_label").set_value(label).run()
    at.sidebar.button(key="up_use").click().run()
    return at


def test_an_uploaded_csv_is_the_data_set_of_every_page():
    at = _upload_csv(open_app(), _csv())
    assert not at.exception
    name = at.session_state["dataset"]
    assert name.startswith("upload-") and name.endswith("-mine")
    assert any("Now using your data set mine.csv: 90 rows, 3 classes" in s.value for s in at.sidebar.success)
    open_tab(at, "home_view", "The data")
    assert any("training rows of each class" in chart_text(c) for c in at.get("plotly_chart"))  # the features view
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
        assert not at.error, (page, [e.value for e in at.error])
        assert at.session_state["dataset"] == name


def test_bad_data_files_get_a_message_and_lose_nothing():
    at = open_app(None, {"dataset": "moons", "model": "tiny"})
    bad = _csv().replace(b"0.", b"x.", 1)  # a non-numeric cell in row 2
    for data, words in ((bad, "is not numeric: row 2"), (_csv(n=20), "20 rows; at least 30"),
                        (_csv(classes=1), "single class")):
        _upload_csv(at, data)
        assert not at.exception
        assert any(words in e.value for e in at.sidebar.error), words
        assert at.session_state["dataset"] == "moons"  # still the data set it was
    opened(at).sidebar.file_uploader(key="up_data").set_value(("data.npz", b"PK\x03\x04 not really",
                                                               "application/zip")).run()
    assert any("not an NPZ" in e.value for e in at.sidebar.error)
    assert at.session_state["dataset"] == "moons" and not at.exception


def test_uploaded_weights_become_the_baseline_and_a_wrong_file_is_refused(tmp_path):
    trained = get_baseline("moons", "tiny", seed=1)  # another seed's weights: a different accuracy
    buf = io.BytesIO()
    torch.save(trained.final_state, buf)
    at = open_app(None, {"dataset": "moons", "model": "tiny"})
    own = metrics(at)["Test accuracy"]
    opened(at).sidebar.file_uploader(key="up_weights").set_value(("tiny.pt", buf.getvalue(),
                                                                  "application/octet-stream"))
    at.run()
    assert not at.exception
    assert any("now the baseline" in s.value for s in at.sidebar.success)
    assert any("your uploaded weights" in i.value for i in at.info)
    ds = load_dataset("moons", seed=0)
    expected = evaluate(trained.model, ds.x_test, ds.y_test).accuracy  # seed 1's weights on this seed's test split
    assert metrics(at)["Test accuracy"] == f"{expected:.2%}"
    for page in ("app_pages/pruning.py", "app_pages/compare.py"):
        at.switch_page(page).run()
        assert not at.exception and not at.error
    # a state_dict of another architecture: refused, naming the layer, and the trained baseline is back
    wrong = io.BytesIO()
    torch.save(get_baseline("moons", "mlp").final_state, wrong)
    at.switch_page("app_pages/home.py").run()
    opened(at).sidebar.file_uploader(key="up_weights").set_value(("mlp.pt", wrong.getvalue(),
                                                                  "application/octet-stream"))
    at.run()
    assert any("fc1.weight" in e.value and "in this model" in e.value for e in at.sidebar.error)
    assert metrics(at)["Test accuracy"] == own and not at.exception


def test_another_session_never_sees_an_upload():
    mine = _upload_csv(open_app(), _csv(seed=4))
    name = mine.session_state["dataset"]
    other = open_app(None, {"dataset": name})  # even a link naming it
    assert not other.exception
    assert other.session_state["dataset"] == "digits"
    assert name not in other.sidebar.selectbox(key="dataset").options


def test_when_a_session_ends_every_result_derived_from_its_uploads_is_forgotten():
    import gc

    from ui.memo import Memo
    from ui.uploads import SessionUploads

    memo = Memo(8)
    memo.get(("upload-1234abcd-mine", "mlp", 0), lambda: "derived")
    memo.get(("digits", "mlp", 0), lambda: "kept")
    ups = SessionUploads()
    ups.names.append("upload-1234abcd-mine")
    del ups  # the session's state is dropped with the session
    gc.collect()
    assert not memo.has(("upload-1234abcd-mine", "mlp", 0)) and memo.has(("digits", "mlp", 0))


def test_an_ended_upload_session_drops_only_its_own_quantization_results():
    """The Quantization page's caches are Memos keyed by the Selection: an ended session's entries go, another
    session's stay (Streamlit's caches could only be emptied for everyone)."""
    import gc

    from compress_core.settings import TrainConfig
    from ui.sidebar import Selection
    from ui.topics import quant as uq
    from ui.uploads import SessionUploads

    mine = Selection("upload-5678abcd-mine", "mlp", 0, TrainConfig())
    theirs = Selection("digits", "mlp", 0, TrainConfig(), weights="")
    for memo in (uq._PTQ, uq._SCAN, uq._FLOAT):
        memo.get((mine, "{}", 8), lambda: "derived")
        memo.get((theirs, "{}", 8), lambda: "kept")
    ups = SessionUploads()
    ups.names.append("upload-5678abcd-mine")
    del ups
    gc.collect()
    for memo in (uq._PTQ, uq._SCAN, uq._FLOAT):
        assert not memo.has((mine, "{}", 8)) and memo.has((theirs, "{}", 8))
