"""compress_core: the UI-free library behind Compression Lab.

Data sets, models, deterministic mask-aware training and cached baselines (the foundation), and the
compression methods built on them: pruning, lottery tickets, quantization and integer-only inference.
No module here imports Streamlit; everything the app shows can be computed from a script or notebook.
"""
import importlib

# Lazy (PEP 562): ``import compress_core.catalog`` must not import PyTorch (the app's first page needs none).
# (``compress_core.train`` is the training module; its function is ``compress_core.train.train``.)
_HOME = {"Baseline": "baselines", "default_train_config": "settings", "get_baseline": "baselines",
         "Dataset": "data", "list_datasets": "data", "load_dataset": "data", "build_model": "models",
         "list_models": "catalog", "summary": "models", "History": "train", "Metrics": "train",
         "TrainConfig": "settings", "evaluate": "train"}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
