"""compress_core: the UI-free library behind Compression Lab.

Data sets, models, deterministic mask-aware training and cached baselines (the foundation), and the
compression methods built on them: pruning, lottery tickets, quantization and integer-only inference.
No module here imports Streamlit; everything the app shows can be computed from a script or notebook.
"""
from .baselines import Baseline, default_train_config, get_baseline
from .data import Dataset, list_datasets, load_dataset
from .models import build_model, list_models, summary
from .train import History, Metrics, TrainConfig, evaluate, train

__all__ = ["Baseline", "Dataset", "History", "Metrics", "TrainConfig", "build_model", "default_train_config",
           "evaluate", "get_baseline", "list_datasets", "list_models", "load_dataset", "summary", "train"]
