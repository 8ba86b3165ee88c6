"""Forged inputs (issue 24): every parser -- uploaded weights (.pt and .safetensors), CSV and NPZ data, recipe JSON and
a link's values -- refuses a forged header (huge counts, negative sizes, deep nesting, truncated data, lying lengths)
with a ValueError in plain words, within a time and memory bound: never a MemoryError, a RecursionError or any other
exception. One property test per parser (and the lab's own .clab model file), then the worst cases by name."""
import io
import json
import math
import struct
import time
import tracemalloc
import zipfile
import zlib
from base64 import urlsafe_b64encode
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compress_core.catalog import model_problems
from compress_core.experiments import RECIPE_LIMITS, loads
from compress_core.export import clab_arch, han_format
from compress_core.uploads import LIMITS, csv_columns, read_csv, read_dataset, read_npz, read_weights
from ui.state import LINK_LIMITS, link_list, parse_link_value, to_bool
from ui.topics import compare as cmp

SECONDS = 5.0  # generous: a 2-core machine running other tests must not flake
PEAK = 64 * 1024 * 1024  # traced bytes allocated while refusing (the forged input itself excluded)
FORGED = settings(max_examples=50, deadline=None, derandomize=True)


def refused(fn, *args, **kwargs) -> str:
    """The plain-words ValueError ``fn`` raises, asserted to come within SECONDS and PEAK."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ValueError) as e:  # any other exception type fails the test
            fn(*args, **kwargs)
        seconds, peak = time.perf_counter() - t0, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(e.value)
    assert type(e.value) is ValueError, type(e.value)  # not a subclass such as UnicodeDecodeError or JSONDecodeError
    assert msg and "Traceback" not in msg and len(msg) < 600, msg
    assert seconds < SECONDS, (seconds, msg)
    assert peak < PEAK, (peak / 2 ** 20, msg)
    return msg


# ---- forging -----------------------------------------------------------------------------------------------------
def zip_of(members, *, directory_size=None) -> bytes:
    """A zip archive assembled by hand: ``members`` are (name, payload, method, declared unpacked size, crc), so a
    member may declare any size (a zip64 extra field for 4 GB and more) and the end record any directory size."""
    out, central = b"", b""
    for name, payload, method, size, crc in members:
        n = name.encode()
        big = size >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, size, len(payload)) if big else b""
        usize, csize = (0xFFFFFFFF, 0xFFFFFFFF) if big else (size, len(payload))
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, method, 0, 0x21, crc, csize, usize, len(n),
                               len(extra), 0, 0, 0, 0, len(out)) + n + extra
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, method, 0, 0x21, crc, csize, usize, len(n),
                           len(extra)) + n + extra + payload
    size = len(central) if directory_size is None else directory_size
    return out + central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), size, len(out), 0)


def stored(name: str, payload: bytes, declared: int | None = None):
    return (name, payload, zipfile.ZIP_STORED, len(payload) if declared is None else declared, zlib.crc32(payload))


def deflate_bomb(megabytes: int) -> bytes:
    """A raw deflate stream of ``megabytes`` MB of zeros in about 1 KB a MB, built without unpacking it: one fully
    flushed block of 1 MB of zeros repeated (a full flush resets the window, so the copies stand alone), then an
    empty final block."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return block * megabytes + b"\x03\x00"


def _u(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(n: int) -> bytes:
    b = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True) if n else b""
    return b"\x8a" + bytes([len(b)]) + b


def _tup(xs) -> bytes:
    return b"(" + b"".join(_int(x) for x in xs) + b"t"


def pt_pickle(tensors) -> bytes:
    """A torch.save data.pkl (protocol 2) by hand: ``tensors`` are (name, storage key, storage numel, size, stride),
    whatever they claim."""
    out = b"\x80\x02}("
    for name, key, numel, size, stride in tensors:
        out += (_u(name) + b"ctorch._utils\n_rebuild_tensor_v2\n((" + _u("storage") + b"ctorch\nFloatStorage\n"
                + _u(key) + _u("cpu") + _int(numel) + b"tQ" + _int(0) + _tup(size) + _tup(stride)
                + b"\x89ccollections\nOrderedDict\n)RtR")
    return out + b"u."


def pt_file(pickle: bytes, records: dict[str, bytes], declared: dict[str, int] | None = None, **kw) -> bytes:
    declared = declared or {}
    members = [stored("archive/data.pkl", pickle, declared.get("data.pkl")), stored("archive/byteorder", b"little"),
               *(stored(f"archive/data/{k}", v, declared.get(k)) for k, v in records.items()),
               stored("archive/version", b"3\n")]
    return zip_of(members, **kw)


def safetensors_file(header, body: bytes = b"", claimed: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if claimed is None else claimed) + text + body


def npy(header: str, body: bytes = b"", version: int = 1, claimed: int | None = None) -> bytes:
    h = header.encode("latin1")
    n = len(h) if claimed is None else claimed
    size = struct.pack("<H", n) if version == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + body


def npy_header(shape, descr="'<f8'") -> str:
    return "{'descr': %s, 'fortran_order': False, 'shape': %s, }" % (descr, shape)


Y_MEMBER = stored("y.npy", npy(npy_header("(40,)", "'<i8'"), bytes(320)))

HUGE = st.one_of(st.integers(2 ** 31, 2 ** 64 - 1), st.sampled_from([10 ** 9, 2 ** 40, 2 ** 63 - 1, 2 ** 64 - 1]))
NEGATIVE = st.integers(-(2 ** 63), -1)


# ---- weights: .pt ------------------------------------------------------------------------------------------------
def _pt_forged():
    good = pt_pickle([("w", "0", 4, (4,), (1,))])
    four = bytes(16)
    return st.one_of(
        # the storage's numel lies about its 16-byte record (huge, negative or just wrong)
        st.one_of(HUGE, NEGATIVE, st.integers(0, 3), st.integers(5, 10 ** 6)).map(
            lambda n: pt_file(pt_pickle([("w", "0", n, (4,), (1,))]), {"0": four})),
        # a view of the 4 numbers claiming huge or negative sizes (strides 0 make a huge one free)
        st.tuples(st.lists(st.one_of(HUGE, NEGATIVE), min_size=1, max_size=4), st.sampled_from([0, 1])).map(
            lambda t: pt_file(pt_pickle([("w", "0", 4, tuple(t[0]), (t[1],) * len(t[0]))]), {"0": four})),
        # a record (or the pickle) declaring gigabytes: a zip bomb's directory
        st.tuples(HUGE, st.sampled_from(["0", "data.pkl"])).map(
            lambda t: pt_file(good, {"0": four}, {t[1]: t[0]})),
        # a directory larger than its limit, or more members than allowed
        st.integers(LIMITS["zip_directory_bytes"] + 1, 2 ** 32 - 1).map(
            lambda n: pt_file(good, {"0": four}, directory_size=n)),
        st.integers(LIMITS["zip_members"] + 1, LIMITS["zip_members"] + 50).map(
            lambda n: pt_file(good, {str(i): four for i in range(n)})),
        # a pickle above its limit, or tensors beyond the count limit
        st.integers(LIMITS["pickle_bytes"] + 1, 2 * LIMITS["pickle_bytes"]).map(
            lambda n: pt_file(b"\x80\x02" + b"N" * (n - 3) + b".", {})),
        st.integers(LIMITS["tensors"] + 1, LIMITS["tensors"] + 20).map(
            lambda n: pt_file(pt_pickle([(f"w{i}", "0", 4, (4,), (1,)) for i in range(n)]), {"0": four})),
        # lists nested deep, or a pickle cut short
        st.integers(1_000, 60_000).map(lambda d: pt_file(b"\x80\x02" + b"]" * d + b"a" * (d - 1) + b".", {})),
        st.integers(0, len(good) - 2).map(lambda n: pt_file(good[:n], {"0": four})),
        # a record cut short, the archive cut short, or not a zip at all (the legacy format, random bytes)
        st.just(pt_file(good, {"0": four[:7]})),
        st.integers(1, 200).map(lambda n: pt_file(good, {"0": four})[:-n]),
        st.binary(min_size=1, max_size=300),
    )


@FORGED
@given(data=_pt_forged())
def test_forged_pt_weights_are_refused_within_bounds(data):
    refused(read_weights, data, "model.pt")


def test_a_legacy_pt_file_is_refused_before_torch_allocates_what_it_declares():
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf, _use_new_zipfile_serialization=False)
    assert "legacy format" in refused(read_weights, buf.getvalue(), "model.pt")


def test_a_pt_view_of_2_to_the_40_numbers_is_refused_from_its_shape():
    data = pt_file(pt_pickle([("w", "0", 4, (2 ** 20, 2 ** 20), (0, 0))]), {"0": bytes(16)})
    assert "more than 10,000,000 numbers" in refused(read_weights, data, "model.pt")


def test_a_pt_zip_bomb_is_refused_from_its_declared_size():
    bomb = deflate_bomb(2048)  # 2 GB of zeros in 2 MB
    data = zip_of([stored("archive/data.pkl", pt_pickle([("w", "0", 2 ** 29, (2 ** 29,), (1,))])),
                   ("archive/data/0", bomb, zipfile.ZIP_DEFLATED, 2 ** 31, 0), stored("archive/version", b"3\n")])
    assert "the limit is 40 MB. Nothing was unpacked" in refused(read_weights, data, "m.pt")


# ---- weights: safetensors ----------------------------------------------------------------------------------------
def _tensor(shape, dtype="F32", offsets=(0, 16)):
    return {"dtype": dtype, "shape": shape, "data_offsets": list(offsets)}


def _st_forged():
    body = bytes(16)
    return st.one_of(
        # the 8-byte header length: huge, beyond the file, or 0
        HUGE.map(lambda n: safetensors_file({"w": _tensor([4])}, body, claimed=n)),
        st.integers(1, 1000).map(lambda k: safetensors_file({"w": _tensor([4])}, body)[:-16 - k]),
        # shapes: huge or negative sizes, too many dimensions, not numbers
        st.lists(st.one_of(HUGE, NEGATIVE), min_size=1, max_size=6).map(
            lambda s: safetensors_file({"w": _tensor(s)}, body)),
        st.integers(LIMITS["tensor_dims"] + 1, 200).map(lambda d: safetensors_file({"w": _tensor([1] * d)}, body)),
        st.sampled_from([[4.0], ["4"], [True, 4], None, 4, [[4]]]).map(
            lambda s: safetensors_file({"w": _tensor(s)}, body)),
        # offsets: beyond the data, reversed, negative, or a span that is not shape × dtype
        st.tuples(st.one_of(HUGE, NEGATIVE, st.integers(0, 64)), st.one_of(HUGE, NEGATIVE, st.integers(0, 64))).filter(
            lambda o: o != (0, 16)).map(lambda o: safetensors_file({"w": _tensor([4], offsets=o)}, body)),
        # an unknown dtype, too many tensors, numbers in all beyond the limit
        st.sampled_from(["F4", "Q8", "", "f32", "I128"]).map(lambda d: safetensors_file({"w": _tensor([4], d)}, body)),
        st.integers(LIMITS["tensors"] + 1, LIMITS["tensors"] + 50).map(
            lambda n: safetensors_file({f"w{i}": _tensor([0], offsets=(0, 0)) for i in range(n)})),
        st.integers(2, 40).map(lambda k: safetensors_file(
            {f"w{i}": _tensor([LIMITS["weight_values"] // 2 + 1, 1], "BOOL", (0, 0)) for i in range(k)})),
        # a header nested deep, not JSON, not UTF-8, or with a number of thousands of digits
        st.integers(4, 50_000).map(lambda d: safetensors_file(b"[" * d + b"]" * d)),
        st.binary(min_size=1, max_size=200).map(lambda b: safetensors_file(b"{" + b)),
        st.integers(4_400, 50_000).map(lambda n: safetensors_file(b'{"w": {"dtype": "F32", "shape": [' + b"9" * n
                                                                   + b'], "data_offsets": [0, 16]}}', body)),
    )


@FORGED
@given(data=_st_forged())
def test_forged_safetensors_are_refused_within_bounds(data):
    refused(read_weights, data, "model.safetensors")


def test_a_safetensors_header_declaring_2_to_the_40_numbers_is_refused():
    data = safetensors_file({"w": _tensor([2 ** 20, 2 ** 20], "F32", (0, 2 ** 42))}, bytes(16))
    refused(read_weights, data, "model.safetensors")
    data = safetensors_file({"w": _tensor([2 ** 20, 2 ** 20], "F32", (0, 16))}, bytes(16))
    assert "more than 10,000,000 numbers" in refused(read_weights, data, "model.safetensors")


def test_a_safetensors_header_claiming_2_to_the_64_bytes_is_refused():
    assert "its header claims" in refused(read_weights, safetensors_file({}, claimed=2 ** 64 - 1), "m.safetensors")


# ---- data: CSV ---------------------------------------------------------------------------------------------------
def _csv_forged():
    cols = LIMITS["columns"]
    return st.one_of(
        # a header with more columns than allowed (quoted commas are no columns: still too many)
        st.integers(cols + 2, 3 * cols).map(lambda n: (",".join(f"f{i}" for i in range(n)) + "\n1,2\n").encode()),
        # one line longer than its limit: a header, a field or a run of commas
        st.integers(1, 3).map(lambda k: b"a,b\n1," + b"9" * (LIMITS["csv_line_bytes"] + k) + b"\n"),
        st.integers(1, 3).map(lambda k: b"a" * (LIMITS["csv_line_bytes"] + k) + b",b\n1,2\n"),
        st.integers(1, 3).map(lambda k: b"a,b\n" + b"," * (LIMITS["csv_line_bytes"] + k)),
        # more numbers than allowed: rows × columns from the header
        st.integers(LIMITS["values"] // cols + 2, LIMITS["values"] // cols + 20).map(
            lambda r: (",".join(f"f{i}" for i in range(cols)) + ",y\n").encode() + (b"1," * cols + b"0\n") * r),
        # more rows than allowed
        st.integers(1, 100).map(lambda k: b"a,y\n" + b"1,0\n1,1\n" * ((LIMITS["rows"] + k) // 2 + 1)),
        # a quote never closed, a row with more fields than the header, random bytes
        st.integers(1, 5_000).map(lambda n: b'a,b\n1,"' + b"x" * n),
        st.integers(1, 50).map(lambda k: b"a,b\n1,2\n" + b"1," * (k + 2) + b"1\n"),
        st.binary(min_size=1, max_size=300),
    )


@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=_csv_forged())
def test_forged_csv_is_refused_within_bounds(data):
    refused(read_csv, data, "d.csv")


def test_the_label_picker_checks_a_csv_header_before_pandas_reads_it():
    assert "1,048,577 columns" in refused(csv_columns, b"," * 2 ** 20 + b"\n1,2\n")
    assert "more than 1 MB long" in refused(csv_columns, b"a" * (LIMITS["csv_line_bytes"] + 1))
    assert csv_columns(b"a,b,label\n1,2,x\n") == ["a", "b", "label"]


# ---- data: NPZ ---------------------------------------------------------------------------------------------------
def _npz_of(x_member) -> bytes:
    return zip_of([x_member, Y_MEMBER])


def _npz_forged():
    body = bytes(960)  # 40 × 3 float64
    return st.one_of(
        # shapes: huge or negative sizes, too many dimensions, more bytes than the member holds
        st.lists(st.one_of(HUGE, NEGATIVE, st.integers(0, 50)), min_size=1, max_size=8).filter(
            lambda s: any(d < 0 for d in s) or len(s) > 4 or math.prod(s) * 8 > 960).map(
            lambda s: _npz_of(stored("x.npy", npy(npy_header(tuple(s)), body)))),
        # the header: a length beyond the limit or the member, nested deep, not a dict, an unknown version
        st.one_of(HUGE.map(lambda n: min(n, 2 ** 32 - 1)), st.integers(LIMITS["npy_header_bytes"] + 1, 2 ** 16)).map(
            lambda n: _npz_of(stored("x.npy", npy(npy_header((40, 3)), body, version=2, claimed=n)))),
        st.integers(100, 9_000).map(lambda d: _npz_of(stored("x.npy", npy(
            npy_header("(" * d + "40," + ")" * d), body)))),
        st.integers(100, 4_000).map(lambda d: _npz_of(stored("x.npy", npy(
            npy_header("(40, 3)", "[('a', " * d + "'<f8'" + ")]" * d), body)))),
        st.sampled_from(["[1, 2]", "{'shape': (3,)}", "{}", "", "{'descr': '<f8', 'fortran_order': 1, 'shape': (3,)}",
                         npy_header("(40.0, 3)"), npy_header("(40, 3)", "'<q9'")]).map(
            lambda h: _npz_of(stored("x.npy", npy(h, body)))),
        st.sampled_from([0, 3, 4, 255]).map(lambda v: _npz_of(stored("x.npy", npy(npy_header((40, 3)), body,
                                                                                   version=v)))),
        # object arrays (pickles), a member cut short, not .npy at all
        st.just(_npz_of(stored("x.npy", npy(npy_header((40, 3), "'|O'"), body)))),
        st.integers(1, 900).map(lambda k: _npz_of(stored("x.npy", npy(npy_header((40, 3)), body)[:-k]))),
        st.binary(max_size=200).map(lambda b: _npz_of(stored("x.npy", b))),
        # the archive: a member declaring gigabytes, a huge directory, too many members
        HUGE.map(lambda n: _npz_of(stored("x.npy", npy(npy_header((40, 3)), body), declared=n))),
        st.integers(LIMITS["zip_directory_bytes"] + 1, 2 ** 32 - 1).map(
            lambda n: zip_of([stored("x.npy", npy(npy_header((40, 3)), body)), Y_MEMBER], directory_size=n)),
        st.integers(LIMITS["zip_members"] + 1, LIMITS["zip_members"] + 50).map(
            lambda n: zip_of([stored("x.npy", b"")] * n)),
    )


@FORGED
@given(data=_npz_forged())
def test_forged_npz_is_refused_within_bounds(data):
    refused(read_npz, data, "d.npz")


def test_an_npz_member_claiming_a_shape_of_1e9_by_1e9_is_refused_before_numpy_allocates():
    data = _npz_of(stored("x.npy", npy(npy_header((10 ** 9, 10 ** 9)), bytes(960))))
    msg = refused(read_dataset, data, "d.npz")
    assert "declares 1,000,000,000,000,000,000 numbers" in msg and "Nothing was unpacked" in msg


def test_an_npz_zip_bomb_is_refused_from_its_declared_size():
    data = zip_of([("x.npy", deflate_bomb(2048), zipfile.ZIP_DEFLATED, 2 ** 31, 0), Y_MEMBER])  # 2 GB in 2 MB
    assert "Nothing was unpacked" in refused(read_npz, data, "d.npz")


# ---- recipe JSON -------------------------------------------------------------------------------------------------
def _recipe(**fields) -> str:
    return json.dumps({"dataset": "digits", "model": "mlp", **fields})


def _recipes_forged():
    lim = RECIPE_LIMITS
    return st.one_of(
        # nested deep (lists, mappings, both), or more lists and mappings than allowed
        st.integers(lim["depth"] + 1, 20_000).map(lambda d: "[" * d + "]" * d),
        st.integers(lim["depth"] + 1, 20_000).map(lambda d: '{"a":' * d + "1" + "}" * d),
        st.integers(lim["depth"] - 2, 5_000).map(lambda d: _recipe(steps=[{"step": "prune", "sparsity": 0.5}])[:-1]
                                                 + ', "name": ' + "[" * d + "]" * d + "}"),
        st.integers(lim["containers"] + 1, 3 * lim["containers"]).map(lambda n: "[" + "[]," * n + "[]]"),
        # more recipes, or steps, than allowed (refused before any is built)
        st.integers(lim["recipes"] + 1, lim["containers"] - 1).map(lambda n: "[" + "{}," * (n - 1) + "{}]"),
        st.integers(7, 40_000).map(lambda n: _recipe(steps=[{"step": "finetune"}] * n)),
        # numbers out of range or of thousands of digits, lists where numbers go
        st.sampled_from(["epochs", "finetune_epochs", "rounds", "qat_epochs", "calibration", "iters"]).flatmap(
            lambda f: st.one_of(HUGE, NEGATIVE, st.just(10 ** 12)).map(
                lambda v: _recipe(steps=[{"step": {"epochs": "finetune", "finetune_epochs": "prune", "rounds": "prune",
                                                   "qat_epochs": "quantize", "calibration": "quantize",
                                                   "iters": "share"}[f], f: v}]))),
        st.one_of(HUGE, st.just(10 ** 12)).map(lambda v: _recipe(train={"epochs": v})),
        st.one_of(HUGE, NEGATIVE).map(lambda v: _recipe(seed=v)),
        st.integers(4_400, 100_000).map(lambda n: '{"seed": ' + "9" * n + "}"),
        st.integers(1, 100_000).map(lambda n: _recipe(steps=[{"step": "prune", "sparsity": [0.5] * n}])),
        st.integers(65, 100_000).map(lambda n: _recipe(model="mlp:" + "-".join(["8"] * n))),
        # a text too long, cut short, or a string never closed
        st.integers(1, 100).map(lambda k: " " * (lim["chars"] + k) + "{}"),
        st.integers(0, 60).map(lambda n: _recipe(steps=[{"step": "prune"}])[:n]),
        st.integers(1, 300_000).map(lambda n: '["' + '\\"' * n),
    )


@FORGED
@given(text=_recipes_forged())
def test_forged_recipe_json_is_refused_within_bounds(text):
    refused(loads, text)


def test_recipe_json_nested_10000_deep_is_refused_in_plain_words():
    msg = refused(loads, '{"recipes": ' + "[" * 10_000 + "]" * 10_000 + "}")
    assert msg == "The recipe file nests lists and mappings 10,001 deep; the limit is 16."


# ---- links -------------------------------------------------------------------------------------------------------
PARSERS = {  # as the pages read their controls from a link
    "int": dict(cast=int, check=lambda v: 0 <= v <= 9999),
    "float": dict(cast=float, allowed=(1e-3, 3e-3, 1e-2)),
    "bool": dict(cast=to_bool),
    "list": dict(cast=link_list, check=lambda v: set(v) <= {0, 30, 50, 70, 80, 90, 95, 98}),
    "model": dict(check=lambda v: not model_problems(v, "digits")),
}


def _link_values():
    chars = LINK_LIMITS["chars"]
    return st.one_of(
        st.integers(chars + 1, 100_000).map(lambda n: "9" * n),
        st.integers(chars + 1, 100_000).map(lambda n: "[" * n),
        st.integers(2, 120).map(lambda d: "[" * d + "]" * d),
        st.integers(LINK_LIMITS["list_items"] + 1, 120).map(lambda n: json.dumps([50] * n)),
        st.sampled_from(["1e999", "-1", "nan", "inf", "0x10", "[50, [70]]", '{"a": 1}', "[true]", "maybe", "",
                         "mlp:99999-99999", "cnn:64k99", "mlp:" + "8-" * 40 + "8", "\x00"]),
        st.text(st.characters(blacklist_categories=("Nd",)), max_size=40).filter(  # no digits: never a valid value
            lambda s: s.strip().lower() not in ("true", "false", "yes", "no", "on", "off", "mlp", "cnn", "tiny")),
    )


@FORGED
@given(raw=_link_values(), kind=st.sampled_from(sorted(PARSERS)))
def test_forged_link_values_are_refused_within_bounds(raw, kind):
    if kind == "bool" and raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return
    refused(parse_link_value, raw, **PARSERS[kind])


def _packed(raw: bytes) -> str:
    return urlsafe_b64encode(zlib.compress(raw, 9)).decode()


def _link_variants():
    step = {"step": "finetune"}
    return st.one_of(
        st.integers(cmp.CMP_LIMITS["chars"] + 1, 200_000).map(lambda n: "A" * n),
        st.integers(cmp.CMP_LIMITS["unpacked"] + 1, 5_000_000).map(lambda n: _packed(b"[" + b" " * n + b"]")),
        st.integers(cmp.CMP_LIMITS["depth"] + 1, 60_000).map(lambda d: _packed(b"[" * d + b"]" * d)),
        st.integers(cmp.CMP_LIMITS["containers"] + 1, 5_000).map(lambda n: _packed(b"[" + b"[]," * n + b"[]]")),
        st.integers(7, 100).map(lambda n: _packed(json.dumps([{"name": "v", "steps": []}] * n).encode())),
        st.integers(7, 20_000).map(lambda n: _packed(json.dumps([{"name": "v", "steps": [step] * n}]).encode())),
        st.integers(cmp.CMP_LIMITS["name_chars"] + 1, 60_000).map(
            lambda n: _packed(json.dumps([{"name": "v" * n, "steps": []}]).encode())),
        st.integers(4_400, 60_000).map(lambda n: _packed(b'[{"name": "v", "steps": [{"step": "share", "bits": '
                                                         + b"9" * n + b"}]}]")),
        st.integers(1, 30).map(lambda k: _packed(json.dumps([{"name": "v", "steps": [step]}]).encode())[:-k]),
        st.text(max_size=60),
    )


@FORGED
@given(text=_link_variants())
def test_forged_compare_links_are_refused_within_bounds(text):
    sel = SimpleNamespace(dataset="digits", model="mlp", seed=0)
    with mock.patch.object(cmp, "st", SimpleNamespace(session_state={})):
        refused(cmp.decode, text, sel)


def test_a_link_zlib_bomb_is_stopped_at_its_limit():
    bomb = urlsafe_b64encode(b"\x78\xda" + deflate_bomb(10)).decode()  # 10 MB of zeros in 14 KB of link
    assert len(bomb) < cmp.CMP_LIMITS["chars"]
    assert "unpack to more than 65,536 bytes" in refused(cmp.read_link, bomb)


# ---- the lab's .clab model file ----------------------------------------------------------------------------------
def clab(header, payload: bytes = b"") -> bytes:
    """A .clab file around ``header`` (JSON or raw bytes) and ``payload``, with a true length and checksum."""
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = han_format.PRELUDE.pack(han_format.MAGIC, han_format.VERSION,
                                   han_format.PRELUDE.size + len(h) + len(payload) + 4, len(h)) + h + payload
    return body + han_format.CHECKSUM.pack(zlib.crc32(body))


def big_layer(entries: int) -> bytes:
    """A 4,000 → 2,500 layer whose index stream claims ``entries`` symbols in one byte of 1-bit Huffman codes."""
    return clab({"arch": [["fc", "Linear", 4_000, 2_500, 0]], "bias_bits": 0},
                han_format.LAYER.pack(0, 3, entries, 2) + struct.pack("<ff", 0, 1) + han_format.STREAM.pack(1, 2, 1)
                + b"\x11\x00" * 2)


def _clab_forged():
    def arch(*layers):
        return {"arch": [list(layer) for layer in layers], "bias_bits": 0, "meta": {}}

    return st.one_of(
        st.tuples(HUGE, st.integers(1, 2 ** 40)).map(lambda t: clab(arch(("fc", "Linear", t[0], t[1], 1)))),
        st.tuples(st.integers(2, 64), st.integers(2, 64), HUGE).map(
            lambda t: clab(arch(("c", "Conv2d", t[0], t[1], t[2], 1, 0, 1)))),
        st.integers(clab_arch.MAX_LAYERS + 1, 5_000).map(lambda n: clab(arch(*[(f"r{i}", "ReLU") for i in range(n)]))),
        st.sampled_from([["fc", ["Linear"], 4, 2, 1], ["fc", "Linear", -4, 2, 1], ["fc", "Linear", 4.0, 2, 1],
                         ["fc", "Linear", True, 2, 1], ["fc", {"a": 1}], "fc", []]).map(
            lambda e: clab({"arch": [e], "bias_bits": 0})),
        st.integers(9, 100_000).map(lambda d: clab(b'{"arch": [], "bias_bits": 0, "meta": ' + b"[" * d + b"]" * d
                                                   + b"}")),
        # a true 4 → 2 layer whose payload claims more entries than it has weights, or streams that lie
        st.integers(9, 2 ** 32 - 1).map(lambda n: clab(arch(("fc", "Linear", 4, 2, 0)),
                                                        han_format.LAYER.pack(0, 3, n, 1) + struct.pack("<f", 0))),
        st.tuples(st.integers(1, 8), st.integers(0, 2 ** 32 - 1)).map(lambda t: clab(
            arch(("fc", "Linear", 4, 2, 0)), han_format.LAYER.pack(0, 3, t[0], 1) + struct.pack("<f", 0)
            + han_format.STREAM.pack(1, 2, t[1]) + b"\x11")),
        # zero-bit codes make any count free: 2^32 entries of a 4 → 2 layer, or a 10 M-weight layer's 10 M symbols
        # from a 1-byte Huffman stream
        st.integers(9, 2 ** 32 - 1).map(lambda n: clab(arch(("fc", "Linear", 4, 2, 0)), han_format.LAYER.pack(
            0, 3, n, 1) + struct.pack("<f", 0) + han_format.STREAM.pack(0, 0, 0) * 2)),
        st.integers(9, 10 ** 7).map(big_layer),
        st.binary(max_size=100).map(lambda b: clab(arch(("fc", "Linear", 4, 2, 0)), b)),
    )


@FORGED
@given(data=_clab_forged())
def test_forged_clab_files_are_refused_within_bounds(data):
    refused(han_format.read, data)


def test_a_clab_header_declaring_a_4_tb_layer_is_refused_before_it_is_built():
    data = clab({"arch": [["fc", "Linear", 10 ** 6, 10 ** 6, 1]], "bias_bits": 0})
    assert "16,777,216 parameters" in refused(han_format.load, data)


def test_a_clab_stream_claiming_10_million_symbols_in_one_byte_is_refused_before_decoding():
    assert "cannot hold 10,000,000 Huffman codes" in refused(han_format.read, big_layer(10 ** 7))
