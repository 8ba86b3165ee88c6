"""Benchmark quantization (issue 5) on this machine: accuracy targets and the cost of a control change.

1. 8-bit PTQ, weights and activations (per-channel symmetric int8 weights, asymmetric uint8 activations,
   min-max calibration on 256 training examples): test-accuracy drop vs float on every (data set, model)
   pair with its default baseline. Target: ≤ 0.5 point everywhere.
2. 4-bit per-channel weights, 8-bit activations, PTQ: drop on digits·mlp and digits·cnn. Target: ≤ 2 points.
3. 2 and 3 bits (weights at b bits per channel, activations at 8): PTQ vs QAT (LSQ, 5 epochs at half the
   baseline's learning rate, state with the best validation accuracy kept), every pair.
4. A control change on the default model (digits·mlp, bit widths 4/3/8/2 in turn): re-quantize + evaluate on
   the test set + compute what the data charts draw (histogram, levels, staircase, per-tensor range):
   ``slider_ms_*``, target median ≤ 50 ms. Building the three Plotly figures on top is reported separately
   (``slider_with_figures_ms_*``): Plotly's validation of every figure costs tens of ms on its own.
5. The Quantization page on the tiny GPT (pydoc·gpt, every Linear of its blocks quantized, 64 calibration windows):
   bits per character of W8A8, W4A8 and W2 (weights only) against float on the test windows, and a bit-width move
   as the page makes it (re-quantize + one pass over the 363 test windows + size + per-layer report + the grid's
   data for ``block1.attn.q``): ``gpt_slider_ms_median`` / ``_p95``. ``--gpt-only`` runs this part alone.
6. A "keep this layer in float" switch of the "Which layer broke it?" tab (digits·cnn, W3A8 per channel): the
   library's work for a set of layers never scored before (``DropDebugger.revert``: ``toggle_revert_ms_*``), and
   the whole page's server-side rerun for one switch moved (AppTest, in process; a switch moves one layer in or out
   of float in turn, so most sets are new to the cache): ``toggle_rerun_ms_*``. AppTest reruns the whole page
   where the browser reruns only the page's fragment, so the rerun figure is an upper bound. ``--toggle-only``
   runs this part alone.

Prints one JSON line per measurement; the last line is one JSON object with ``int8_max_drop_pts``,
``w4_per_channel_drop_pts``, ``ptq_2bit_acc``, ``qat_2bit_acc``, ``ptq_3bit_acc``, ``qat_3bit_acc`` (objects
keyed "dataset/model"), ``slider_ms_median`` and ``slider_ms_p95`` (plus ``slider_with_figures_ms_*`` and the details).

Usage: python bench/bench_quant.py [--repeats 40] [--qat-epochs 5] [--threads N] [--gpt-only] [--toggle-only]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress_core.baselines import get_baseline  # noqa: E402
from compress_core.data import DATASETS, list_datasets, load_dataset  # noqa: E402
from compress_core.lm.variants import score_with_metrics  # noqa: E402
from compress_core.models import list_models  # noqa: E402
from compress_core.quant import (  # noqa: E402
    QuantConfig,
    calibrate,  # noqa: E402
    layer_report,
    model_size,
    quantization_aware_training,  # noqa: E402
    quantize_model,
)
from compress_core.text import lm_metrics  # noqa: E402
from compress_core.train import TrainConfig, evaluate  # noqa: E402
from compress_core.viz import quant as qviz  # noqa: E402

CALIB = 256


def pairs() -> list[tuple[str, str]]:
    """Every built-in classifier (the GPT on text has no integer program)."""
    return [(d, m) for d in list_datasets() if DATASETS[d].kind != "text" for m in list_models(d)]


def acc(model, ds) -> float:
    return evaluate(model, ds.x_test, ds.y_test).accuracy


def emit(row: dict) -> None:
    print(json.dumps(row), flush=True)


def slider_step(model, ds, cfg: QuantConfig) -> tuple[float, float]:
    """One control change as the page does it. Returns (compute ms, figure ms): compute = re-quantize +
    evaluate on the test set + the data the charts draw (histogram, levels, staircase, per-tensor range for
    the channel chart); figures = building the three Plotly figures from it (Plotly's own validation)."""
    t0 = time.perf_counter()
    q = quantize_model(model, cfg, ds.x_train[:CALIB])
    evaluate(q, ds.x_test, ds.y_test)
    ql = q.fc1
    qp = qviz.channel_qparams(ql.weight_qparams, 0)
    w0 = ql.weight.detach()[0]
    qviz.grid_data(w0, qp)
    qviz.staircase_data(qp, float(w0.min()), float(w0.max()))
    per_tensor = calibrate(ql.weight, cfg.weight_method, bits=cfg.weight_bits, symmetric=True)
    t1 = time.perf_counter()
    qviz.weight_grid(w0, qp, title="fc1")
    qviz.staircase(qp, float(w0.min()), float(w0.max()))
    qviz.channel_ranges(ql.weight, ql.weight_qparams, per_tensor)
    t2 = time.perf_counter()
    return 1000 * (t1 - t0), 1000 * (t2 - t1)


GPT_CALIB = 64  # windows of 64 characters: the page's default on the GPT (ui.topics.quant.GPT_CALIB)


def gpt_step(model, ds, cfg: QuantConfig) -> float:
    """One bit-width move on the GPT as the page computes it (ms): quantize, bits per character and next-character
    accuracy in one pass over the test windows, size, the per-layer report, the grid's data of the first layer."""
    t0 = time.perf_counter()
    q = quantize_model(model, cfg, ds.x_train[:GPT_CALIB])
    score_with_metrics(q, ds)
    model_size(q)
    layer_report(q, ds.x_train[:GPT_CALIB])
    ql = q.get_submodule("block1.attn.q")
    qp = qviz.channel_qparams(ql.weight_qparams, 0)
    w0 = ql.weight.detach()[0]
    qviz.grid_data(w0, qp)
    qviz.staircase_data(qp, float(w0.min()), float(w0.max()))
    return 1000 * (time.perf_counter() - t0)


def gpt_part(repeats: int) -> dict:
    b, ds = get_baseline("pydoc", "gpt"), load_dataset("pydoc")
    model, calib = b.model, ds.x_train[:GPT_CALIB]
    base = lm_metrics(model, ds)
    out = {"gpt_float_bpc": round(base.bpc, 4), "gpt_float_bpc_se": round(base.bpc_se, 4)}
    for name, cfg in (("w8a8", QuantConfig()), ("w4a8", QuantConfig(weight_bits=4, act_bits=8)),
                      ("w2", QuantConfig(target="weights", weight_bits=2))):
        out[f"gpt_{name}_bpc"] = round(lm_metrics(quantize_model(model, cfg, calib), ds).bpc, 4)
    cfgs = [QuantConfig(weight_bits=bb, act_bits=8) for bb in (4, 3, 8, 2)]
    for c in cfgs:  # warm-up
        gpt_step(model, ds, c)
    ms = [gpt_step(model, ds, cfgs[i % len(cfgs)]) for i in range(repeats)]
    out.update(gpt_slider_ms_median=round(statistics.median(ms), 1), gpt_slider_ms_p95=round(pct(ms, 0.95), 1),
               gpt_repeats=repeats, threads=torch.get_num_threads())
    emit(out)
    return out


def toggle_part(repeats: int) -> dict:
    """Part 6: a float switch of the drop debugger, in the library (cold sets) and as the page's rerun."""
    from streamlit.testing.v1 import AppTest

    from compress_core.quant.report import make_config
    from compress_core.recover import DropDebugger

    b, ds = get_baseline("digits", "cnn"), load_dataset("digits")
    cfg = make_config(3, "both", symmetric=True, per_channel=True, method="minmax", keep_act8=True,
                      narrow_range=False, percentile=99.99)
    q = quantize_model(b.model, cfg, ds.x_train[:CALIB])
    dbg = DropDebugger(b.model, q, ds.x_test, ds.y_test)
    units = dbg.units
    lib = []
    for i in range(repeats):  # every subset once before any repeats: cold in the page's cache too
        subset = [u for k, u in enumerate(units) if (i % (2 ** len(units))) >> k & 1]
        t0 = time.perf_counter()
        dbg.revert(subset)
        lib.append(1000 * (time.perf_counter() - t0))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for k, v in {"dataset": "digits", "model": "cnn", "q_bits": "3", "q_qatcurve": "0",
                 "q_view": "Which layer broke it?"}.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("app_pages/quantization.py").run()
    at.session_state["q_view"] = "Which layer broke it?"
    at.run()
    page, state = [], {u: False for u in units}
    for i in range(repeats):
        u = units[i % len(units)]
        state[u] = not state[u]
        at.toggle(key=f"q_float_{u}").set_value(state[u])
        t0 = time.perf_counter()
        at.run()
        page.append(1000 * (time.perf_counter() - t0))
        if at.exception:
            raise RuntimeError(f"the page failed: {at.exception}")
    out = {"toggle_revert_ms_median": round(statistics.median(lib), 2),
           "toggle_revert_ms_p95": round(pct(lib, 0.95), 2),
           "toggle_rerun_ms_median": round(statistics.median(page), 1),
           "toggle_rerun_ms_p95": round(pct(page, 0.95), 1),
           "toggle_setting": "digits/cnn W3A8 per channel, 360 test images", "toggle_moves": repeats,
           "threads": torch.get_num_threads()}
    emit(out)
    return out


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--qat-epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (the app uses 1; 0 = torch's default)")
    ap.add_argument("--gpt-only", action="store_true", help="only part 5, the Quantization page on the GPT")
    ap.add_argument("--toggle-only", action="store_true", help="only part 6, a float switch of the drop debugger")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.gpt_only:
        gpt_part(max(4, args.repeats // 4))
        return
    if args.toggle_only:
        toggle_part(args.repeats)
        return

    int8, w4, low = {}, {}, {f"{k}_{b}bit_acc": {} for k in ("ptq", "qat") for b in (2, 3)}
    for d, m in pairs():
        b, ds = get_baseline(d, m), load_dataset(d)
        fmodel = b.model
        f = acc(fmodel, ds)
        q8 = acc(quantize_model(fmodel, QuantConfig(), ds.x_train[:CALIB]), ds)
        int8[f"{d}/{m}"] = round(100 * (f - q8), 2)
        row = {"pair": f"{d}/{m}", "float_acc": round(f, 4), "int8_acc": round(q8, 4),
               "int8_drop_pts": int8[f"{d}/{m}"]}
        if d == "digits" and m in ("mlp", "cnn"):
            q4 = acc(quantize_model(fmodel, QuantConfig(weight_bits=4, act_bits=8), ds.x_train[:CALIB]), ds)
            w4[f"{d}/{m}"] = round(100 * (f - q4), 2)
            row["w4a8_acc"] = round(q4, 4)
        sched = TrainConfig(epochs=args.qat_epochs, lr=b.config.train.lr / 2, batch_size=b.config.train.batch_size)
        for bits in (2, 3):
            cfg = QuantConfig(weight_bits=bits, act_bits=8)
            p = acc(quantize_model(fmodel, cfg, ds.x_train[:CALIB]), ds)
            t0 = time.perf_counter()
            q, _ = quantization_aware_training(fmodel, cfg, ds, sched, calibration_data=ds.x_train[:CALIB], lsq=True)
            row[f"qat_{bits}bit_s"] = round(time.perf_counter() - t0, 1)
            low[f"ptq_{bits}bit_acc"][f"{d}/{m}"] = round(p, 4)
            low[f"qat_{bits}bit_acc"][f"{d}/{m}"] = round(acc(q, ds), 4)
            row[f"ptq_{bits}bit_acc"], row[f"qat_{bits}bit_acc"] = round(p, 4), round(acc(q, ds), 4)
        emit(row)

    b, ds = get_baseline("digits", "mlp"), load_dataset("digits")
    model = b.model
    cfgs = [QuantConfig(weight_bits=bb, act_bits=8) for bb in (4, 3, 8, 2)]
    for c in cfgs:  # warm-up
        slider_step(model, ds, c)
    runs = [slider_step(model, ds, cfgs[i % len(cfgs)]) for i in range(args.repeats)]
    compute = [c for c, _ in runs]
    full = [c + f for c, f in runs]
    med, p95 = statistics.median(compute), pct(compute, 0.95)
    emit({"slider_ms_median": round(med, 1), "slider_ms_p95": round(p95, 1),
          "slider_with_figures_ms_median": round(statistics.median(full), 1),
          "slider_with_figures_ms_p95": round(pct(full, 0.95), 1), "repeats": args.repeats,
          "threads": torch.get_num_threads()})

    summary = {
        "int8_max_drop_pts": max(int8.values()), "int8_drop_pts": int8,
        "w4_per_channel_drop_pts": w4,
        **low,
        "qat_minus_ptq_2bit_pts": {k: round(100 * (low["qat_2bit_acc"][k] - low["ptq_2bit_acc"][k]), 1)
                                   for k in low["ptq_2bit_acc"]},
        "qat_minus_ptq_3bit_pts": {k: round(100 * (low["qat_3bit_acc"][k] - low["ptq_3bit_acc"][k]), 1)
                                   for k in low["ptq_3bit_acc"]},
        "low_bit_setting": "weights b-bit per-channel symmetric, activations 8-bit; QAT = LSQ, "
                           f"{args.qat_epochs} epochs at half the baseline lr, best-validation state",
        "slider_ms_median": round(med, 1), "slider_ms_p95": round(p95, 1),
        "slider_with_figures_ms_median": round(statistics.median(full), 1),
        "slider_with_figures_ms_p95": round(pct(full, 0.95), 1),
        "targets": {"int8_max_drop_pts": "<= 0.5", "w4_per_channel_drop_pts": "<= 2", "slider_ms_median": "<= 50"},
        **gpt_part(max(4, args.repeats // 4)),
        **toggle_part(args.repeats),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
