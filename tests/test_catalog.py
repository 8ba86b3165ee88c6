"""The torch-free catalog and settings (the start page's path) agree with what PyTorch builds and the cache holds;
and the warm-up never imports while a page run is under way."""
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from compress_core import catalog, settings
from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.models import build_model, weighted_layers

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("mlp", "cnn", "tiny", "gpt", "mlp:256-128-64", "mlp:2", "cnn:8k3-16k5", "cnn:4k7", "cnn:64k1-64k3-64k5",
          "gpt:1x8h1", "gpt:3x48h6")


def test_the_start_path_imports_no_pytorch_pandas_or_numpy():
    """What app.py and the start page's first tab import (see their imports) leaves the heavy modules out."""
    code = ("import sys, plotly.io, streamlit, ui.sidebar, ui.warmup, ui.state, ui.explain, compress_core.catalog, "
            "compress_core.settings; print(sorted(m for m in ('torch', 'pandas', 'numpy', 'sklearn') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", list(catalog.DATASETS))
def test_data_info_matches_the_loaded_data_set(name):
    ds, info = load_dataset(name), catalog.data_info(name)
    assert (info.kind, info.input_shape, info.num_classes, info.description) == \
        (ds.kind, ds.input_shape, ds.num_classes, ds.description)
    assert catalog.data_info(ds) == info  # a loaded Dataset reads the same


@pytest.mark.parametrize("name", list(catalog.DATASETS))
def test_parameter_counts_match_pytorch(name):
    info = catalog.data_info(name)
    for model in MODELS:
        if catalog.model_problems(model, name):
            with pytest.raises(ValueError):
                build_model(model, name)
            continue
        net = build_model(model, name)
        arch = catalog.built_architecture(model, info.input_shape)
        assert catalog.param_count(arch, info) == sum(p.numel() for p in net.parameters()), model
        assert catalog.weighted_layer_count(arch) == len(weighted_layers(net)), model


def test_model_problems_need_no_data_set_loaded():
    assert catalog.model_problems("cnn:8k3-16k5", "moons") == ["A CNN needs images or signals; moons is points. "
                                                               "Use an MLP."]
    assert catalog.list_models("moons") == ["mlp", "tiny"] and catalog.list_models("mnist1d") == ["mlp", "cnn"]
    big = catalog.model_problems("mlp:1024-1024", "digits")
    assert len(big) == 1 and "1,000,000" in big[0]
    with pytest.raises(ValueError, match="Unknown data set"):
        catalog.data_info("banana")


def test_cached_record_is_what_the_baseline_loads(tmp_path):
    b = get_baseline("moons", "tiny", seed=0, cache_dir=tmp_path)
    folder = settings.entry_dir(b.config, tmp_path)
    rec = settings.cached_record(b.config, folder)
    assert rec["test_metrics"] == {"accuracy": b.test_metrics.accuracy, "loss": b.test_metrics.loss}
    assert rec["history"]["iterations"] == b.history.iterations and rec["history"]["records"] == b.history.records
    other = settings.BaselineConfig("moons", "tiny", 1, b.config.train)
    assert settings.cached_record(other, folder) is None  # another config's folder is not read as this one
    (folder / "history.json").write_text((folder / "history.json").read_text().replace("1", "2"))
    assert settings.cached_record(b.config, folder) is None  # a checksum that fails: no record
    assert settings.cached_record(b.config, tmp_path / "nowhere") is None


def test_warm_up_waits_for_runs_and_runs_wait_for_it(monkeypatch):
    from ui import warmup

    events = []
    import_started = threading.Event()
    monkeypatch.setattr(warmup, "_started", False)
    monkeypatch.setattr(warmup, "MODULES", ("json",))
    monkeypatch.setattr(warmup, "DELAY_S", 0.0)
    real = warmup.importlib.import_module

    def slow_import(name):
        events.append("import start")
        import_started.set()
        time.sleep(0.2)
        events.append("import end")
        return real(name)

    monkeypatch.setattr(warmup.importlib, "import_module", slow_import)
    monkeypatch.setattr(warmup.gc, "freeze", lambda: events.append("freeze"))
    with warmup.running():
        assert warmup.start() and not warmup.start()  # once per process
        time.sleep(0.2)
        events.append("run end")  # the warm-up has not begun while this run holds running()
    assert import_started.wait(30)  # the warm-up begins once the run has ended (an event: no race on a busy machine)

    def second_run():
        with warmup.running():
            events.append("second run")

    t = threading.Thread(target=second_run)
    t.start()
    t.join(5)
    assert events == ["run end", "import start", "import end", "freeze", "second run"]
