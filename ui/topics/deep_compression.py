"""The Deep compression page's Streamlit glue: its controls (with the Han et al. preset), cached runs shared by all
sessions (read, never changed), and the file's download."""
from __future__ import annotations

import streamlit as st

from compress_core.deep_compression import HAN_SETTINGS, PipelineConfig, dense_control, run_pipeline
from compress_core.export import han_format
from ui import jobs
from ui.explain import explainer
from ui.memo import Memo
from ui.state import to_bool, url_widget

RUNS, CONTROLS = Memo(32), Memo(32)
SPARSITY = [0.0, 50.0, 70.0, 80.0, 90.0, 95.0, 96.0, 97.0, 98.0, 99.0, 100.0]
SCOPE = {"layer": "per layer", "global": "global"}
METHOD = {"kmeans": "k-means weight sharing", "uniform": "uniform per-channel"}
LRS = [1e-3, 3e-3, 6e-3, 1e-2]
BIAS_BITS = {0: "float32", 6: "6-bit", 8: "8-bit", 16: "16-bit"}
INDEX_BITS = [0, 3, 4, 5, 6, 7, 8]
# the preset: widget key -> value of HAN_SETTINGS (the page's sliders show it; the seed stays the sidebar's)
PRESET = {"dc_sparsity": round(HAN_SETTINGS.sparsity * 100, 1), "dc_scope": HAN_SETTINGS.scope,
          "dc_rounds": HAN_SETTINGS.rounds, "dc_epochs": HAN_SETTINGS.epochs, "dc_lr": HAN_SETTINGS.lr,
          "dc_method": HAN_SETTINGS.method, "dc_bits": HAN_SETTINGS.bits, "dc_cepochs": HAN_SETTINGS.centroid_epochs,
          "dc_bias_bits": HAN_SETTINGS.bias_bits, "dc_huffman": HAN_SETTINGS.huffman,
          "dc_index_bits": HAN_SETTINGS.index_bits}


def _apply_preset() -> None:
    st.session_state.update(PRESET)


def controls(seed: int) -> PipelineConfig:
    """The pipeline's settings, seeded from the link; stops the page with a plain message when they cannot run."""
    head, button = st.columns([3, 1.3])
    head.header("Controls")
    button.button("Han et al. settings (≥ 50×)", on_click=_apply_preset, key="dc_preset", width="stretch",
                  help="Han et al.'s recipe with settings found for digits·mlp: 97 % global sparsity in 5 rounds of 8 "
                       "epochs at lr 6e-3, 4-bit k-means, 2 centroid epochs, 8-bit biases, Huffman coding. "
                       "bench/bench_ship.py measures it on seeds 0-2.")
    c1, c2, c3 = st.columns([2, 1, 1])
    sparsity = url_widget(c1.select_slider, "dc_sparsity", 90.0, "Target sparsity (%)", SPARSITY, cast=float,
                          allowed=SPARSITY, help="Fraction of all weights removed by magnitude by the end of pruning, "
                          "the output layer included (Han et al. prune every layer; the Pruning page prunes the "
                          "output layer at half the rate by default, so its weight counts differ at the same %).")
    scope = url_widget(c2.radio, "dc_scope", "layer", "Scope", list(SCOPE), allowed=list(SCOPE),
                       format_func=SCOPE.get, horizontal=True,
                       help="Per layer: every layer loses the same fraction. Global: one ranking of |w| across all "
                            "layers.")
    rounds = url_widget(c3.slider, "dc_rounds", 3, "Pruning rounds", 1, 8, cast=int, check=lambda v: 1 <= v <= 8,
                        help="Prune the same fraction of the survivors each round, then fine-tune under the mask.")
    c1, c2, c3, c4 = st.columns([1, 1.3, 1.2, 1])
    epochs = url_widget(c1.slider, "dc_epochs", 3, "Fine-tune epochs per round", 0, 10, cast=int,
                        check=lambda v: 0 <= v <= 10, help="Training with the pruned weights held at zero; 0 = prune "
                                                           "only.")
    method = url_widget(c2.radio, "dc_method", "kmeans", "Sharing method", list(METHOD), allowed=list(METHOD),
                        format_func=METHOD.get, horizontal=True,
                        help="k-means: k shared values per layer, placed where the weights are. Uniform: an evenly "
                             "spaced grid per output channel (compress_core.quant, symmetric so zero stays zero).")
    bits = url_widget(c3.slider, "dc_bits", 4, "Bits per weight", 1, 8, cast=int, check=lambda v: 1 <= v <= 8,
                      help="Each surviving weight is stored as a code of this many bits: k = 2^bits shared values "
                           "(centroids) or quantization levels.")
    cepochs = url_widget(c4.slider, "dc_cepochs", 1, "Centroid fine-tune epochs", 0, 3, cast=int,
                         check=lambda v: 0 <= v <= 3, disabled=method != "kmeans",
                         help="k-means only: train the centroids (a centroid's gradient is the sum of its weights' "
                              "gradients). 0 = re-evaluate only.")
    c1, c2, c3, c4 = st.columns([1.2, 1, 1, 1])
    lr = url_widget(c1.select_slider, "dc_lr", 3e-3, "Fine-tune learning rate", LRS, cast=float, allowed=LRS,
                    format_func=lambda v: f"{v:g}", help="Adam's learning rate while fine-tuning after each round.")
    bias_bits = url_widget(c2.selectbox, "dc_bias_bits", 8, "File: biases", list(BIAS_BITS), cast=int,
                           allowed=list(BIAS_BITS), format_func=BIAS_BITS.get,
                           help="The file stores biases as signed integers with one float32 scale per layer.")
    index_bits = url_widget(c3.selectbox, "dc_index_bits", 0, "File: index bits", INDEX_BITS, cast=int,
                            allowed=INDEX_BITS, format_func=lambda v: "best per layer" if v == 0 else f"{v} bits",
                            help="Width of the relative indices (Han: 5 for fc layers); a longer gap takes filler "
                                 "zeros. 'Best per layer' tries every width and keeps the smallest layer.")
    use_huffman = url_widget(c4.toggle, "dc_huffman", True, "File: Huffman coding", cast=to_bool,
                             help="Huffman-code the codes and indices (each stream only where that is smaller).")
    if sparsity >= 100.0:
        st.warning("At 100 % sparsity no weight is left: there is nothing to share and the network outputs only its "
                   "biases. Choose 99 % or less.")
        st.stop()
    try:
        return PipelineConfig(sparsity=sparsity / 100, scope=scope, rounds=int(rounds), epochs=int(epochs), lr=lr,
                              method=method, bits=int(bits), centroid_epochs=int(cepochs), seed=seed,
                              bias_bits=int(bias_bits), index_bits=int(index_bits), huffman=bool(use_huffman))
    except ValueError as e:
        st.error(f"These settings cannot run: {e}")
        st.stop()


def pipeline(sel, baseline, ds, cfg: PipelineConfig):
    """``run_pipeline`` once per setting, on the heavy-run pool with its progress and a Cancel button; None if
    this session cancelled it."""
    return jobs.run(RUNS, (sel.key, cfg.to_json()), lambda report: run_pipeline(baseline, ds, cfg, progress=report),
                    "Prune, fine-tune, share weights and write the file", "dc_cancel")


def control(sel, baseline, ds, cfg: PipelineConfig):
    """``dense_control``: the dense network with the pipeline's extra training, cached per (baseline, fine-tuning);
    on the heavy-run pool. None without fine-tuning or if cancelled."""
    if cfg.epochs <= 0:
        return None
    key = (sel.key, cfg.epochs, cfg.lr, cfg.rounds, cfg.seed, cfg.lr_schedule)
    return jobs.run(CONTROLS, key, lambda report: dense_control(baseline, ds, cfg),
                    "Control: the dense network, same extra training", "dc_cancel_control")


def download_file(res, sel, where=st) -> None:
    """The compressed file's download button, labelled with its length (the size every table shows)."""
    where.download_button(f"Download the compressed file ({len(res.file):,} bytes)", res.file,
                          f"{sel.dataset}_{sel.model}{han_format.EXTENSION}", han_format.MIME, key="dc_clab",
                          help="The .clab file: load it with compress_core.export.han_format.load(bytes) "
                               "(format: docs/FORMAT.md).")


def stages_explainer(cfg: PipelineConfig) -> None:
    """What each stage stores, in words, for the settings on screen."""
    explainer("What each stage stores, and why the ratio is smaller than 32 / bits", f"""
- **Dense**: every parameter as a 4-byte float.
- **Pruned** (magnitude, {SCOPE[cfg.scope]}, {cfg.rounds} round(s), fine-tuned under the mask): a CSR matrix
  per layer: 4-byte values of the survivors, a column index for each (1 byte when a row has ≤ 256 columns, else 2),
  and one row pointer per row. The index is why 90 % sparsity gives less than 10×.
- **Shared**: each survivor becomes a {cfg.bits}-bit code into the layer's codebook ({cfg.k} × 32 bits for
  k-means; one float scale per output channel for uniform); the CSR index stays. Biases stay float32.
- **File** (`.clab`, docs/FORMAT.md): relative indices with filler zeros instead of CSR, the codebook holding only
  the values in use, codes and indices {"Huffman-coded" if cfg.huffman else "in fixed-width codes"}, biases as
  {BIAS_BITS[cfg.bias_bits]} numbers, the layer list as JSON, a CRC-32. Its size is its length in bytes, and
  its accuracy that of the network loaded back from those bytes.
- k-means uses **linear initialisation** (centroids evenly spaced over [min, max]): it keeps centroids out at
  the rare large weights, which matter most (Han 2016, section 3.2).
""")
