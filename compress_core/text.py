"""A character-level text corpus that every machine has, and the language-model metrics on it.

The corpus is the Python documentation's topic texts that ``pydoc`` shows for ``help("assert")`` and the like:
``pydoc_data.topics.topics``, part of the standard library, about 465,000 characters of English prose and code
(so nothing is downloaded). The topics are joined in sorted-key order and read one character at a time, as
Karpathy's char-rnn and nanoGPT's ``shakespeare_char`` read their text:

- The vocabulary is fixed: the newline, the 95 printable ASCII characters and one fallback ``�`` for anything else
  (typographic quotes and dashes first become their ASCII forms). Fixed rather than "the characters that occur",
  so the model's shape never depends on which Python's ``pydoc_data`` was read (3.11's lacks ``$`` and a backquote).
- The text is cut contiguously by position, 90 % train, 5 % validation, 5 % test: held-out text is never seen in
  training (random windows from one text would share most of their characters across the splits).
- Training windows of ``context`` characters start at seeded random positions (about two windows per ``context``
  characters: every character is seen about twice an epoch, at varying positions in its window); validation and
  test windows do not overlap. Each window's target is the same window one character on.

The model's score is the mean cross-entropy per character in bits (bits per character, bpc): ``loss / ln 2``. A
uniform guess over the 97 symbols costs log2 97 ≈ 6.6 bpc; character-level models of English reach 1-2.

Usage::

    ds = load_dataset("pydoc")                       # x: (N, 64) int64 windows, y: the next characters
    lm_metrics(model, ds, "test").bpc                # bits per character on the held-out text
    generate(model, ds, "The \\"for\\" statement", n_chars=200, temperature=0.8, seed=0)
"""
from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # (torch is imported where it is used)
    import torch
    from torch import nn

    from .data import Dataset

__all__ = ["CONTEXT", "FALLBACK", "SPLIT", "VOCAB", "LMMetrics", "bits_per_char", "corpus", "corpus_splits",
           "decode", "encode", "eval_windows", "generate", "lm_metrics", "train_windows", "window_losses"]

CONTEXT = 64  # characters a model sees at once (the data set's input_shape)
FALLBACK = "\ufffd"  # Unicode's replacement character, for anything outside the vocabulary
VOCAB = "\n" + "".join(map(chr, range(32, 127))) + FALLBACK  # 97 symbols; a token id is an index into this
SPLIT = (0.90, 0.05, 0.05)  # train, validation, test: contiguous runs of the text, in this order
# Typographic characters the topics use, as the ASCII a reader would type (one character for one, so positions
# in the text stay put); everything else outside the vocabulary becomes FALLBACK.
_ASCII_FORMS = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}


@functools.lru_cache(maxsize=1)
def corpus() -> str:
    """The pydoc topics, joined in sorted-key order, in the vocabulary's characters (465 k on Python 3.11)."""
    from pydoc_data.topics import topics

    text = "".join(topics[k] for k in sorted(topics))
    known = set(VOCAB)
    return "".join(c if c in known else FALLBACK for c in (_ASCII_FORMS.get(c, c) for c in text))


def corpus_digest() -> str:
    """The first 16 hex digits of the corpus's SHA-256: it changes with the Python whose ``pydoc_data`` was read."""
    return hashlib.sha256(corpus().encode()).hexdigest()[:16]


def encode(text: str, vocab: str = VOCAB) -> np.ndarray:
    """Token ids (int64) of ``text``; a character outside ``vocab`` becomes the fallback (its last symbol)."""
    index = {c: i for i, c in enumerate(vocab)}
    fallback = len(vocab) - 1
    return np.fromiter((index.get(_ASCII_FORMS.get(c, c), fallback) for c in text), dtype=np.int64, count=len(text))


def decode(ids, vocab: str = VOCAB) -> str:
    """The text of token ids (a sequence, array or tensor of ints)."""
    return "".join(vocab[int(i)] for i in np.asarray(ids).reshape(-1))


@functools.lru_cache(maxsize=1)
def corpus_splits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) token ids: the encoded corpus cut at 90 % and 95 % of its length."""
    ids = encode(corpus())
    a, b = round(SPLIT[0] * len(ids)), round((SPLIT[0] + SPLIT[1]) * len(ids))
    parts = ids[:a], ids[a:b], ids[b:]
    for p in parts:
        p.setflags(write=False)  # shared by every caller
    return parts


def train_windows(ids: np.ndarray, context: int, seed: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` windows (default: two per ``context`` characters) at seeded random starts, and their targets.

    Returns (x, y), both (n, context) int64, with ``y[:, t] == ids[start + t + 1]``: every target lies in ``ids``.
    """
    n = 2 * len(ids) // context if n is None else n
    starts = np.sort(np.random.default_rng(seed).integers(0, len(ids) - context, size=n))
    offsets = starts[:, None] + np.arange(context)
    return ids[offsets], ids[offsets + 1]


def eval_windows(ids: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive, non-overlapping windows over ``ids`` and their targets (the last partial one left out)."""
    n = (len(ids) - 1) // context
    x = ids[:n * context].reshape(n, context)
    y = ids[1:n * context + 1].reshape(n, context)
    return x, y


def bits_per_char(loss_nats: float) -> float:
    """A mean cross-entropy per character in nats as bits per character (÷ ln 2)."""
    return loss_nats / math.log(2)


@dataclass(frozen=True)
class LMMetrics:
    """A language model's score on one split: mean cross-entropy per character in nats (``loss``) and in bits
    (``bpc``), perplexity e^loss, next-character accuracy, and the standard error of ``bpc`` over the evaluation
    windows (the spread of the per-window mean losses, ÷ √windows)."""

    loss: float
    bpc: float
    perplexity: float
    bpc_se: float
    accuracy: float
    windows: int
    characters: int


def window_losses(model: "nn.Module", dataset: "Dataset", split: str = "test",
                  batch_size: int = 256) -> tuple["torch.Tensor", int]:
    """(each window's mean cross-entropy in nats, float64; how many target characters the top prediction got
    right) of ``model`` on ``dataset``'s ``split`` ("train", "val" or "test"). The model's mode is restored."""
    import torch
    import torch.nn.functional as F

    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test' (got {split!r}).")
    x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
    if len(y) == 0:
        raise ValueError("Cannot evaluate on an empty split.")
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    per_window, correct = [], 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            out = model(xb)  # (B, V, T)
            per_window.append(F.cross_entropy(out, yb, reduction="none").double().mean(dim=1).cpu())
            correct += (out.argmax(1) == yb).sum().item()
    model.train(was_training)
    return torch.cat(per_window), correct


def lm_metrics(model: "nn.Module", dataset: "Dataset", split: str = "test", batch_size: int = 256) -> LMMetrics:
    """``LMMetrics`` of ``model`` on ``dataset``'s ``split`` ("train", "val" or "test"): every target character of
    every window counts once, so ``loss`` equals ``train.evaluate(...).loss``."""
    losses, correct = window_losses(model, dataset, split, batch_size)
    characters = getattr(dataset, f"y_{split}").numel()
    loss = float(losses.mean())
    se = float(losses.std() / math.sqrt(len(losses))) if len(losses) > 1 else float("nan")
    return LMMetrics(loss=loss, bpc=bits_per_char(loss), perplexity=math.exp(loss), bpc_se=bits_per_char(se),
                     accuracy=correct / characters, windows=len(losses), characters=characters)


def generate(model: "nn.Module", vocab: "Dataset | str", prompt: str = "", n_chars: int = 200,
             temperature: float = 1.0, seed: int = 0) -> str:
    """``n_chars`` characters that ``model`` writes after ``prompt``, one at a time (the prompt is not included).

    Args:
        model: a language model returning logits (B, V, T) for token ids (B, T), e.g. ``build_model("gpt", ...)``.
        vocab: the data set it was trained on (its ``meta["vocab"]``), or the vocabulary string itself.
        prompt: the text to continue; characters outside the vocabulary become the fallback, and only its last
            ``context`` characters are seen (an empty prompt starts from a newline).
        n_chars: how many characters to write.
        temperature: divides the logits before sampling; 0 picks the most likely character every time.
        seed: fixes the sampling (a private generator; the global one is left alone).
    """
    import torch

    if temperature < 0 or n_chars < 0:
        raise ValueError("temperature and n_chars must be ≥ 0.")
    if not isinstance(vocab, str):
        vocab = vocab.meta["vocab"]
    context = model.embed.pos.num_embeddings if hasattr(model, "embed") else CONTEXT
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    gen = torch.Generator().manual_seed(int(seed))
    ids = torch.from_numpy(encode(prompt or "\n", vocab)).tolist()
    out = []
    with torch.no_grad():
        for _ in range(n_chars):
            x = torch.tensor([ids[-context:]], dtype=torch.long, device=device)
            logits = model(x)[0, :, -1].double().cpu()  # the next character's, (V,)
            if temperature == 0:
                nxt = int(logits.argmax())
            else:
                probs = torch.softmax(logits / temperature, dim=0)
                nxt = int(torch.multinomial(probs, 1, generator=gen))
            ids.append(nxt)
            out.append(vocab[nxt])
    model.train(was_training)
    return "".join(out)
