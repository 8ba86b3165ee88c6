"""Deep compression (Han, Mao & Dally 2016): prune, share the survivors' values, Huffman-code them into a file,
and count every stored byte.

- ``pipeline``: the ``PipelineConfig`` and ``run_pipeline`` (prune in rounds with fine-tuning, k-means weight
  sharing with centroid fine-tuning or uniform quantization, the ``.clab`` file), the bytes of each stage
  (``stage_bytes``, ``index_bytes``), Han's formula (``han_ratio``), the building blocks the recipes reuse
  (``share_layers``, ``tune_shared``) and the same-budget dense control (``dense_control``).
- ``report``: what the page shows, as plain data: the key stages and their warnings (``stage_summary``), the
  whole-model formula, the shared values a layer really uses, where the file's bytes go, and the published
  LeNet-300-100 figures beside ours.

Usage::

    from compress_core.deep_compression import PipelineConfig, run_pipeline, stage_summary
    res = run_pipeline(get_baseline("digits", "mlp"), load_dataset("digits"), PipelineConfig(sparsity=0.9, bits=4))
    stage_summary(res).final["ratio"]               # the file's compression ratio, measured from its bytes
    open("model.clab", "wb").write(res.file)
"""
from .pipeline import (
                       FLOAT_BITS,
                       HAN_SETTINGS,
                       METHODS,
                       SCHEDULES,
                       PipelineConfig,
                       PipelineResult,
                       dense_control,
                       file_stage_name,
                       finetune_centroids,
                       han_ratio,
                       index_bytes,
                       kmeans_share,
                       run_pipeline,
                       share_layers,
                       stage_bytes,
                       tune_shared,
)
from .report import (
                     FILE_GROUPS,
                     FORMULA_COLUMNS,
                     PUBLISHED_LENET_300_100,
                     StageSummary,
                     file_breakdown,
                     file_layers,
                     formula_rows,
                     published_comparison,
                     stage_summary,
                     used_centroids,
)

__all__ = ["FILE_GROUPS", "FLOAT_BITS", "FORMULA_COLUMNS", "HAN_SETTINGS", "METHODS", "PUBLISHED_LENET_300_100",
           "SCHEDULES", "PipelineConfig", "PipelineResult", "StageSummary", "dense_control", "file_breakdown",
           "file_layers", "file_stage_name", "finetune_centroids", "formula_rows", "han_ratio", "index_bytes",
           "kmeans_share", "published_comparison", "run_pipeline", "share_layers", "stage_bytes", "stage_summary",
           "tune_shared", "used_centroids"]
