"""Uploaded weights and data sets: round trips, one test per validation rule, refusal of pickled code (proved not
to run), limits, and a registry that forgets an upload once nobody holds it."""
import gc
import io
import os
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save

from compress_core import evaluate, get_baseline, load_dataset
from compress_core.data import is_uploaded
from compress_core.experiments import Prune, Recipe, run
from compress_core.models import build_model
from compress_core.uploads import (
    LIMITS,
    check_weights,
    read_csv,
    read_dataset,
    read_npz,
    read_weights,
    register_weights,
)


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _csv(rows: list[list], header: list[str]) -> bytes:
    return ("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n").encode()


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


# ---- weights ---------------------------------------------------------------------------------------------------
def test_saved_state_dict_round_trips_to_the_same_accuracy():
    b = get_baseline("digits", "mlp")
    ds = load_dataset("digits")
    for data, name in ((_saved(b.final_state), "model.pt"), (st_save(b.final_state), "model.safetensors")):
        state = read_weights(data, name)
        check_weights(state, build_model("mlp", ds))
        handle = register_weights(state, name)
        up = get_baseline("digits", "mlp", weights=handle.digest)
        assert up.test_metrics.accuracy == b.test_metrics.accuracy
        assert evaluate(up.model, ds.x_test, ds.y_test).accuracy == b.test_metrics.accuracy
        assert up.history.records == []  # no training history: it was uploaded


def test_a_sized_gpts_weights_upload_and_score_the_same():
    """A GPT trained elsewhere (here: initialised, then one weight changed) uploads as .pt and .safetensors: its tied
    head is no parameter, so the state holds the embedding once, and the uploaded baseline scores what it scored."""
    ds = load_dataset("pydoc")
    model = build_model("gpt:1x16h2", ds, seed=3)
    with torch.no_grad():
        model.block1.mlp.fc.weight[0, 0] = 0.5
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert not any(k.startswith("head.") for k in state)
    want = evaluate(model, ds.x_test, ds.y_test)
    for data, name in ((_saved(state), "gpt.pt"), (st_save(state), "gpt.safetensors")):
        got = read_weights(data, name)
        check_weights(got, build_model("gpt:1x16h2", ds))
        handle = register_weights(got, name)
        up = get_baseline("pydoc", "gpt:1x16h2", weights=handle.digest)
        assert up.test_metrics == want
        m = up.model  # a fresh copy each time it is read
        assert m.head.tied_weight.data_ptr() == m.embed.tok.weight.data_ptr()  # still tied
    with pytest.raises(ValueError, match="pick the architecture"):
        check_weights(state, build_model("gpt:1x32h2", ds))


def test_a_checkpoint_with_a_state_dict_inside_is_read():
    state = build_model("tiny", "moons").state_dict()
    assert set(read_weights(_saved({"state_dict": state, "epoch": 3}))) == set(state)


class _Marker:
    """Unpickling this runs os.system: a file that would execute code when loaded unsafely."""

    path = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "it-ran"
    _Marker.path = str(marker)
    data = _saved({"fc1.weight": torch.zeros(2, 2), "evil": _Marker()})
    with pytest.raises(ValueError) as e:
        read_weights(data, "model.pt")
    assert "refused" in str(e.value) and "nothing in it was run" in str(e.value) and "system" in str(e.value)
    assert not marker.exists()
    # the same bytes loaded unsafely do run it: the test's file is really malicious
    torch.load(io.BytesIO(data), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("data,words", [
    (b"", "empty"),
    (b"\x00" * 100, "not a readable PyTorch weights file"),
    (b"x" * (LIMITS["bytes"] + 1), "limit"),
])
def test_bad_weight_files_are_refused(data, words):
    with pytest.raises(ValueError, match=words):
        read_weights(data, "model.pt")


def test_truncated_weight_files_are_refused():
    full = _saved(build_model("tiny", "moons").state_dict())
    with pytest.raises(ValueError, match="not a readable"):
        read_weights(full[: len(full) // 2], "model.pt")
    st = st_save(build_model("tiny", "moons").state_dict())
    with pytest.raises(ValueError, match="safetensors"):
        read_weights(st[: len(st) // 2], "model.safetensors")
    with pytest.raises(ValueError, match="state_dict"):
        read_weights(_saved([1, 2, 3]), "model.pt")


def test_shape_mismatch_names_the_first_layer():
    model = build_model("mlp", "digits")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"Layer 'fc2.weight' is 50×300 in the file but 100×300"):
        check_weights(dict(state, **{"fc2.weight": torch.zeros(50, 300)}), model)
    with pytest.raises(ValueError, match=r"no 'fc3.bias'"):
        check_weights({k: v for k, v in state.items() if k != "fc3.bias"}, model)
    with pytest.raises(ValueError, match=r"parameters this model does not: fc4.weight"):
        check_weights(dict(state, **{"fc4.weight": torch.zeros(1)}), model)
    with pytest.raises(ValueError, match=r"'fc1.weight' holds NaN"):
        check_weights(dict(state, **{"fc1.weight": torch.full((300, 64), float("nan"))}), model)


def test_uploaded_weights_are_forgotten_once_nobody_holds_them():
    handle = register_weights(build_model("tiny", "moons").state_dict())
    digest = handle.digest
    get_baseline("moons", "tiny", weights=digest)
    del handle
    gc.collect()
    with pytest.raises(ValueError, match="no longer here"):
        get_baseline("moons", "tiny", weights=digest)


# ---- data sets -------------------------------------------------------------------------------------------------
def _table(n=60, f=3, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, f)) + y[:, None]
    return [[*row, f"c{label}"] for row, label in zip(x.round(4), y)], [f"f{i}" for i in range(f)] + ["label"]


def test_csv_is_accepted_registered_and_usable_like_a_built_in_set(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESS_LAB_CACHE", str(tmp_path))
    rows, header = _table()
    up = read_dataset(_csv(rows, header), "mine.csv")
    assert up.kind == "features" and up.class_names == ("c0", "c1") and is_uploaded(up.name)
    ds = load_dataset(up.name, seed=1)
    assert ds.input_shape == (3,) and sum(ds.sizes.values()) == 60
    assert all(len(set(t.tolist())) == 2 for t in (ds.y_train, ds.y_val, ds.y_test))  # every class in each split
    res = run(Recipe(up.name, "mlp:16", 0, steps=(Prune(sparsity=0.5, finetune_epochs=0),)))
    assert 0 <= res.test_acc <= 1
    assert not any(tmp_path.rglob("*.json")) and not any(tmp_path.rglob("*.pt"))  # nothing derived was written


def test_feature_counts_choose_the_view():
    rows, header = _table(f=2)
    assert read_csv(_csv(rows, header)).kind == "points"
    rows, header = _table(f=16)
    up = read_csv(_csv(rows, header))
    assert up.kind == "image" and up.x.shape[1:] == (1, 4, 4)
    assert read_csv(_csv(rows, header), shape_hint="signal").kind == "sequence"
    assert read_csv(_csv(rows, header), shape_hint="features").kind == "features"


def test_label_column_is_chosen_by_name():
    rows, header = _table()
    header[0], header[-1] = "target", "f0"
    up = read_csv(_csv([[r[-1], *r[1:-1], r[0]] for r in rows], header), label="target")
    assert up.class_names == ("c0", "c1")
    with pytest.raises(ValueError, match="no column 'nope'"):
        read_csv(_csv(rows, header), label="nope")


@pytest.mark.parametrize("edit,words", [
    (lambda rows: rows.__setitem__(4, [rows[4][0], "", *rows[4][2:]]), r"Column 'f1' has a missing value in row 6"),
    (lambda rows: rows.__setitem__(7, [rows[7][0], rows[7][1], "abc", rows[7][3]]),
     r"Column 'f2' is not numeric: row 9 holds 'abc'"),
    (lambda rows: rows.__setitem__(2, [*rows[2][:3], ""]), r"label column 'label' is empty in row 4"),
    (lambda rows: [r.__setitem__(3, "same") for r in rows], "single class"),
    (lambda rows: rows.__delitem__(slice(20, None)), "20 rows; at least 30"),
    (lambda rows: [r.__setitem__(3, f"k{i}") for i, r in enumerate(rows)], r"Class 'k0' has only 1 rows"),
])
def test_each_csv_rule_has_its_message(edit, words):
    rows, header = _table()
    edit(rows)
    with pytest.raises(ValueError, match=words):
        read_csv(_csv(rows, header))


def test_csv_limits_rows_columns_and_bytes(monkeypatch):
    monkeypatch.setitem(LIMITS, "rows", 50)
    rows, header = _table(n=60)
    with pytest.raises(ValueError, match="more than 50 rows, the limit here"):
        read_csv(_csv(rows, header))
    monkeypatch.setitem(LIMITS, "columns", 2)
    with pytest.raises(ValueError, match="columns; the limit is 2"):
        read_csv(_csv(*_table(n=40, f=4)))
    monkeypatch.setitem(LIMITS, "bytes", 100)
    with pytest.raises(ValueError, match="the limit is"):
        read_csv(_csv(*_table()))
    with pytest.raises(ValueError, match="not a readable CSV"):
        read_csv(b"\xff\xfe\x00garbage")


def test_npz_with_splits_and_images():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(90, 6, 6)).astype(np.float32), np.arange(90) % 3
    data = _npz(x=x[:60], y=y[:60], x_val=x[60:75], y_val=y[60:75], x_test=x[75:], y_test=y[75:])
    up = read_dataset(data, "mine.npz")
    assert up.kind == "image" and up.x.shape[1:] == (1, 6, 6)
    ds = load_dataset(up.name, seed=5)
    assert ds.sizes == {"train": 60, "val": 15, "test": 15}  # the file's splits, whatever the seed


@pytest.mark.parametrize("arrays,words", [
    (dict(x=np.zeros((40, 3))), "arrays named 'x'"),
    (dict(x=np.zeros((40, 3)), y=np.zeros(39)), "one label per row"),
    (dict(x=np.zeros((40, 3)), y=np.arange(40) % 2, z=np.zeros(1)), "Unknown array"),
    (dict(x=np.array(["a"] * 40), y=np.arange(40) % 2), "not numbers"),
    (dict(x=np.full((40, 3), np.nan), y=np.arange(40) % 2), "missing or infinite value in row 0"),
    (dict(x=np.zeros((40, 3)), y=np.arange(40) % 2, x_val=np.zeros((5, 3)), y_val=np.zeros(5)),
     "both x_val/y_val and x_test/y_test"),
])
def test_each_npz_rule_has_its_message(arrays, words):
    with pytest.raises(ValueError, match=words):
        read_npz(_npz(**arrays))


def test_npz_pickled_objects_are_refused():
    buf = io.BytesIO()
    np.savez(buf, x=np.array([{"a": 1}] * 40, dtype=object), y=np.arange(40) % 2)
    with pytest.raises(ValueError, match="object arrays"):
        read_npz(buf.getvalue())


def test_npz_sizes_are_checked_before_anything_is_unpacked(monkeypatch):
    monkeypatch.setitem(LIMITS, "npz_uncompressed", 1024 * 1024)
    data = _npz(x=np.zeros((4000, 100), np.float32), y=np.arange(4000) % 2)  # 1.6 MB of zeros, tiny compressed
    assert len(data) < 20_000
    opened = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: opened.append(1) or real_load(*a, **k))
    with pytest.raises(ValueError, match="unpacks to 2 MB; the limit is 1 MB. Nothing was unpacked"):
        read_npz(data)
    assert not opened
    with pytest.raises(ValueError, match="not an NPZ"):
        read_npz(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="upload a .csv or .npz"):
        read_dataset(b"x", "data.xlsx")
    assert zipfile.is_zipfile(io.BytesIO(data))


def test_an_uploaded_data_set_is_forgotten_once_nobody_holds_it():
    up = read_dataset(_csv(*_table(seed=3)), "gone.csv")
    name = up.name
    load_dataset(name)
    del up
    gc.collect()
    with pytest.raises(ValueError, match="no longer here"):
        load_dataset(name)


# ---- fuzzing: any bytes at all give a ValueError in plain words, or a valid result -------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_GOOD_CSV = _csv(*_table())
_GOOD_PT = _saved(build_model("tiny", "moons").state_dict())


def _mangled(good: bytes):
    """Random bytes, or a good file truncated, with bytes flipped, or with junk appended."""
    return st.one_of(
        st.binary(max_size=400),
        st.integers(0, len(good)).map(lambda n: good[:n]),
        st.tuples(st.integers(0, len(good) - 1), st.integers(1, 255)).map(
            lambda t: good[:t[0]] + bytes([good[t[0]] ^ t[1]]) + good[t[0] + 1:]),
        st.binary(min_size=1, max_size=50).map(lambda junk: good + junk),
    )


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=_mangled(_GOOD_PT), name=st.sampled_from(["m.pt", "m.safetensors", "m.pth"]))
def test_any_weights_file_is_read_or_refused_in_plain_words(data, name):
    try:
        state = read_weights(data, name)
    except ValueError as e:
        assert str(e) and "Traceback" not in str(e)
    else:
        assert all(isinstance(v, torch.Tensor) for v in state.values())


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.one_of(_mangled(_GOOD_CSV), _mangled(_npz(x=np.zeros((40, 3)), y=np.arange(40) % 2))),
       name=st.sampled_from(["d.csv", "d.npz"]))
def test_any_data_file_is_read_or_refused_in_plain_words(data, name):
    try:
        up = read_dataset(data, name)
    except ValueError as e:
        assert str(e) and "Traceback" not in str(e)
    else:
        assert len(up.x) == len(up.y) >= LIMITS["min_rows"]
