"""Reference-based text metrics through their libraries: BLEU-3 (sacrebleu) and BERTScore (bert-score), as
DeepfakeJudge reports them on DFJ-Reason. Thin wrappers: the numbers are the libraries' own (tested to 1e-6); what is
added is the choice of settings, one-line errors, and what the libraries cannot do.

- BLEU-3: sacrebleu's BLEU with `max_ngram_order=3`, its defaults otherwise (13a tokenizer, mixed case, exponential
  smoothing), 0-100. `corpus` is the corpus score over all pairs (n-gram counts summed, one brevity penalty);
  `sentence` the per-pair sentence score with effective order (sacrebleu's sentence-level setting), averaged by the
  caller.
- BERTScore: bert-score's `BERTScorer` (precision, recall, F1 per pair, 0-1; no idf, as its default). The model is a
  hub name or a local directory; the layer is bert-score's tuned one for the models it knows (roberta-large: 17),
  and must be given for any other. `rescale` uses bert-score's baseline file for the model (English), or `baseline`.
  bert-score 0.3.13 cannot embed an empty text under transformers 5 (it calls a tokenizer method that no longer
  exists), so a pair with an empty side is not sent to it: it scores 0 (the caller counts such pairs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from common.errors import UserError

DEFAULT_BERTSCORE_MODEL = "roberta-large"  # bert-score's English default (lang="en")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"


class Bleu3(NamedTuple):
    corpus: float  # sacrebleu's corpus BLEU-3, 0-100
    sentence: list[float]  # per-pair sentence BLEU-3 (effective order), 0-100
    signature: str  # sacrebleu's signature of the corpus score


def bleu3(hypotheses: Sequence[str], references: Sequence[str]) -> Bleu3:
    """Corpus and per-pair sentence BLEU-3: sacrebleu's numbers."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(max_ngram_order=3)
    corpus = metric.corpus_score(list(hypotheses), [list(references)]).score
    sentence = BLEU(max_ngram_order=3, effective_order=True)
    return Bleu3(corpus, [sentence.sentence_score(h, [r]).score for h, r in zip(hypotheses, references, strict=True)],
                 str(metric.get_signature()))


def _layers_of(model: str) -> int | None:
    try:
        config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("num_hidden_layers")
    return value if isinstance(value, int) else None


class BertScore:
    """bert-score's scorer for one model and layer, loaded once; `score` returns per-pair (P, R, F1) lists."""

    def __init__(self, model: str = DEFAULT_BERTSCORE_MODEL, *, layers: int | None = None, rescale: bool = False,
                 baseline: str | None = None, batch_size: int = 64, device: str | None = None) -> None:
        try:
            from bert_score import BERTScorer
            from bert_score.utils import model2layers
        except ImportError as exc:
            raise UserError(f"BERTScore needs the bert-score package ({_one_line(exc)}): install requirements.txt, "
                            f"or pass --no-bertscore") from None
        if layers is None:
            layers = model2layers.get(model)
            if layers is None:
                known = _layers_of(model)
                has = f" (it has {known} layers)" if known else ""
                raise UserError(f"--bertscore-model {model}: bert-score has no tuned layer for this model{has}; pass "
                                f"--bertscore-layers N, the layer whose embeddings are compared (bert-score's own "
                                f"choice for roberta-large is 17 of 24)")
        if rescale:
            path = baseline or os.path.join(os.path.dirname(__import__("bert_score").__file__), "rescale_baseline",
                                            "en", f"{model}.tsv")
            if not os.path.isfile(path):  # bert-score would only warn and return unrescaled numbers
                raise UserError(f"--bertscore-rescale: no baseline file for {model!r} ({path}); bert-score ships "
                                f"baselines for hub models such as roberta-large; for another model pass "
                                f"--bertscore-baseline FILE")
            baseline = path
        elif baseline is not None:
            raise UserError("--bertscore-baseline applies with --bertscore-rescale")
        self.settings = {"model": model, "layers": layers, "rescale": rescale, "baseline": baseline, "idf": False}
        try:
            self._scorer = BERTScorer(model_type=model, num_layers=layers, lang="en", rescale_with_baseline=rescale,
                                      baseline_path=baseline, batch_size=batch_size, device=device)
        except Exception as exc:  # noqa: BLE001 - any failure to load is the user's model choice / environment
            raise UserError(f"cannot load the BERTScore model {model!r} ({type(exc).__name__}: {_one_line(exc)}); "
                            f"pass --bertscore-model with a local model directory, or --no-bertscore") from None

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> tuple[list[float], ...]:
        """Per-pair precision, recall and F1 (bert-score's scale); a pair with an empty side scores 0, 0, 0."""
        keep = [i for i, (c, r) in enumerate(zip(candidates, references, strict=True)) if c.strip() and r.strip()]
        out = ([0.0] * len(candidates), [0.0] * len(candidates), [0.0] * len(candidates))
        if keep:
            p, r, f = self._scorer.score([candidates[i] for i in keep], [references[i] for i in keep])
            for column, values in zip(out, (p, r, f), strict=True):
                for i, value in zip(keep, values.tolist(), strict=True):
                    column[i] = value
        return out
