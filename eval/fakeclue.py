"""FakeClue / FakeVLM scoring (FakeVLM paper Table 2): Acc, F1 by class, ROUGE-L, CSS, per category. See
eval/README.md.

    python eval/score.py --task fakeclue --predictions P --references R [--css-model NAME_OR_PATH | --no-css]
        [--compat fakevlm] [--out metrics.json]

Verdicts come from FakeClue's answer codec, `prompts/fakeclue.py` (`parse`: the verdict sentence, negation scope,
hedges and refusals unparseable; `--compat fakevlm`: the official substring rule with seeded guesses). An unparseable
verdict counts as wrong. `score_response` is the per-sample step (verdict correct, ROUGE-L), shared with the RL
rewards; ROUGE-L is rouge-score's rougeL F-measure (Porter stemmer); CSS is the cosine similarity of
sentence-transformers embeddings of the answer and the reference answer. Both compare the whole answer (reasoning set
aside) with the whole reference answer, × 100.
"""

from __future__ import annotations

import functools
import math
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import UserError, where
from common.join import Pair, assistant_text, reference_meta
from eval import css
from eval.report_cards import CardContext, issue_chip, plain_card
from eval.tables import fmt as _fmt
from eval.tables import fmt_ci
from eval.tasks import ScoreContext, Scored
from prompts.fakeclue import FAKE, REAL, answer_text, parse, parse_fakevlm

NAME = "fakeclue"
DEFAULT_CSS_MODEL = "sentence-transformers/paraphrase-MiniLM-L6-v2"  # FakeShield's / LEGION's choice
METRIC_KEYS = ("accuracy", "f1_real", "f1_fake", "f1_macro", "fake_accuracy", "real_accuracy", "rouge_l", "css")


# --- detection metrics -------------------------------------------------------------------------------------------


def f1_score(tp: int, fp: int, fn: int) -> float | None:
    """2TP / (2TP + FP + FN) × 100; None when the class neither occurs nor is predicted."""
    denominator = 2 * tp + fp + fn
    return 100.0 * 2 * tp / denominator if denominator else None


def macro(*values: float | None) -> float | None:
    """Mean of the defined per-class values (a class that neither occurs nor is predicted is left out, as
    scikit-learn's macro average leaves out labels absent from both sides); None if none is defined."""
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


def effective(truth: str, predicted: str | None) -> str:
    """An unparseable verdict counts as wrong: as if the other class had been predicted."""
    if predicted is None:
        return REAL if truth == FAKE else FAKE
    return predicted


def detection_metrics(truths: Sequence[str], predicted: Sequence[str | None]) -> dict[str, float | None]:
    """accuracy; f1_real (real = positive class: the FakeVLM paper's F1), f1_fake (fake = positive), f1_macro
    (their mean); fake_accuracy, real_accuracy (recall of each class). 0-100; None where undefined."""
    pairs = [(t, effective(t, p)) for t, p in zip(truths, predicted, strict=True)]
    n = len(pairs)
    confusion = Counter(pairs)
    tp_fake, tp_real = confusion[(FAKE, FAKE)], confusion[(REAL, REAL)]
    fake_as_real, real_as_fake = confusion[(FAKE, REAL)], confusion[(REAL, FAKE)]
    n_fake, n_real = tp_fake + fake_as_real, tp_real + real_as_fake
    f1_fake = f1_score(tp_fake, real_as_fake, fake_as_real)
    f1_real = f1_score(tp_real, fake_as_real, real_as_fake)
    return {
        "accuracy": 100.0 * (tp_fake + tp_real) / n if n else None,
        "f1_real": f1_real,
        "f1_fake": f1_fake,
        "f1_macro": macro(f1_real, f1_fake),
        "fake_accuracy": 100.0 * tp_fake / n_fake if n_fake else None,
        "real_accuracy": 100.0 * tp_real / n_real if n_real else None,
    }


# --- ROUGE-L -----------------------------------------------------------------------------------------------------


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (bit-parallel, Allison & Dix 1986).

    Equal to rouge-score's dynamic-programming table value (tested), in O(len(a) · len(b) / word size).
    """
    if len(a) < len(b):
        a, b = b, a
    masks: dict[str, int] = {}
    for i, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << i)
    row = 0
    for token in a:
        x = masks.get(token, 0) | row
        row = x & ((x - ((row << 1) | 1)) ^ x)
    return row.bit_count()


class RougeL:
    """rouge-score's rougeL F-measure (`RougeScorer(["rougeL"], use_stemmer=True)`), computed faster.

    Tokens come from rouge-score's own tokenizer with its Porter stemmer (memoised per word and per text); the LCS
    length from `lcs_length`; precision, recall and F-measure with rouge-score's formulas — so the numbers are
    rouge-score's exactly (tests compare them).
    """

    MAX_TEXTS = 100_000  # memoised token lists kept at most

    def __init__(self, use_stemmer: bool = True) -> None:
        from nltk.stem import porter
        from rouge_score import scoring, tokenize

        self._fmeasure = scoring.fmeasure
        self._tokenize = tokenize.tokenize
        stemmer = porter.PorterStemmer()
        self._stemmer = _CachedStemmer(stemmer.stem) if use_stemmer else None
        self._tokens: dict[str, tuple[str, ...]] = {}

    def tokens(self, text: str) -> tuple[str, ...]:
        got = self._tokens.get(text)
        if got is None:
            if len(self._tokens) >= self.MAX_TEXTS:  # an RL run scores new texts forever: memory stays flat
                self._tokens.clear()
            got = self._tokens[text] = tuple(self._tokenize(text, self._stemmer))
        return got

    def score(self, target: str, prediction: str) -> float:
        """F-measure in [0, 1] (rouge-score's argument order: reference first)."""
        ref, pred = self.tokens(target), self.tokens(prediction)
        if not ref or not pred:
            return 0.0
        lcs = lcs_length(ref, pred)
        return self._fmeasure(lcs / len(pred), lcs / len(ref))


class _CachedStemmer:
    def __init__(self, stem: Callable[[str], str]) -> None:
        self.stem = functools.lru_cache(maxsize=1 << 16)(stem)


# --- references and the per-sample step --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    label: str  # FAKE | REAL
    cate: str | None
    answer: str | None  # the reference answer, whitespace collapsed; None for a question-only (inference) record


def read_reference(record: dict[str, Any], ctx: str) -> Reference:
    meta = reference_meta(record, ctx, NAME, "converters/fakeclue_to_swift.py", (FAKE, REAL))
    label = meta["label"]
    cate = meta.get("cate")
    if cate is not None and not isinstance(cate, str):
        raise UserError(f"{ctx}: meta.cate must be a string or null (got {cate!r})")
    answer = assistant_text(record)
    if answer is None:
        answer = meta.get("answer")
    if answer is not None and not isinstance(answer, str):
        raise UserError(f"{ctx}: meta.answer must be a string or absent (got {type(answer).__name__})")
    return Reference(label, cate, " ".join(answer.split()) if answer is not None else None)


_ROUGE: RougeL | None = None


def score_response(response: object, reference: Reference, *, official_rng: random.Random | None = None,
                   rouge: RougeL | bool = True) -> dict[str, Any]:
    """The scorer's per-sample step, also the RL reward's: one generation against one reference.

    Returns `label` (the parsed verdict, None if unparseable), `issue`, `guessed` (--compat fakevlm's coin flip),
    `notes` (what prompts.reasoning set aside), `correct` (the verdict equals the reference label; unparseable is
    wrong), `answer` (the text compared with the reference: the final answer, reasoning set aside) and `rouge_l`
    (rouge-score's rougeL F-measure in [0, 1] against the reference answer; None without a reference answer or
    with rouge=False). `official_rng` switches to the official FakeVLM rule with guesses drawn from it.
    """
    global _ROUGE
    verdict = parse_fakevlm(response, official_rng) if official_rng is not None else parse(response)
    answer = answer_text(response)
    value = None
    if rouge is not False and reference.answer is not None:
        if rouge is True:
            _ROUGE = _ROUGE or RougeL()
            rouge = _ROUGE
        value = rouge.score(reference.answer, answer)
    return {"label": verdict.label, "issue": verdict.issue, "guessed": verdict.guessed, "notes": list(verdict.notes),
            "correct": verdict.label == reference.label, "answer": answer, "rouge_l": value}


# --- bootstrap ---------------------------------------------------------------------------------------------------


def bootstrap_ci(truths: Sequence[str], predicted: Sequence[str | None], rouge: Sequence[float | None] | None,
                 css: Sequence[float | None] | None, n: int, seed: int, *, level: float = 0.95,
                 chunk: int = 100) -> dict[str, list[float] | None]:
    """Percentile CIs of every metric; fake and real samples are resampled separately (the test set's mix kept).
    ROUGE-L and CSS average over the samples that have a value (a reference answer)."""
    if n <= 0 or not truths:
        return {}
    truth = np.array([t == FAKE for t in truths])
    eff = np.array([effective(t, p) == FAKE for t, p in zip(truths, predicted, strict=True)])
    columns = {"tp_fake": truth & eff, "tp_real": ~truth & ~eff, "fake_as_real": truth & ~eff,
               "real_as_fake": ~truth & eff}
    values = {k: v.astype(float) for k, v in columns.items()}
    for name, scores in (("rouge_l", rouge), ("css", css)):
        if scores is not None:
            values[name] = np.array([0.0 if v is None else v for v in scores], dtype=float)
            values[f"{name}_n"] = np.array([v is not None for v in scores], dtype=float)
    names = list(values)
    matrix = np.stack([values[k] for k in names], axis=1)  # (samples, columns)
    strata = [np.flatnonzero(truth), np.flatnonzero(~truth)]
    rng = np.random.default_rng(seed)
    total = len(truths)
    sums = []
    for start in range(0, n, chunk):
        b = min(chunk, n - start)
        weights = np.zeros((b, total))
        for members in strata:
            if len(members):
                draws = members[rng.integers(0, len(members), size=(b, len(members)))]
                flat = (draws + (np.arange(b) * total)[:, None]).ravel()
                weights += np.bincount(flat, minlength=b * total).reshape(b, total)
        sums.append(weights @ matrix)
    col = dict(zip(names, np.vstack(sums).T, strict=True))
    tp_f, tp_r, f_as_r, r_as_f = col["tp_fake"], col["tp_real"], col["fake_as_real"], col["real_as_fake"]
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = {
            "accuracy": 100.0 * (tp_f + tp_r) / total,
            "f1_fake": 100.0 * 2 * tp_f / (2 * tp_f + r_as_f + f_as_r),
            "f1_real": 100.0 * 2 * tp_r / (2 * tp_r + f_as_r + r_as_f),
            "fake_accuracy": 100.0 * tp_f / (tp_f + f_as_r),
            "real_accuracy": 100.0 * tp_r / (tp_r + r_as_f),
        }
        for name in ("rouge_l", "css"):
            if name in col:
                reps[name] = 100.0 * col[name] / col[f"{name}_n"]
    both = np.stack([reps["f1_fake"], reps["f1_real"]])
    defined = ~np.isnan(both)
    with np.errstate(invalid="ignore", divide="ignore"):
        reps["f1_macro"] = np.where(defined.any(axis=0), np.nansum(both, axis=0) / defined.sum(axis=0), np.nan)
    alpha = (1.0 - level) / 2.0
    out: dict[str, list[float] | None] = {}
    for key in METRIC_KEYS:
        v = reps.get(key)
        v = v[~np.isnan(v)] if v is not None else None
        if v is None or v.size == 0:
            out[key] = None
        else:
            lo, hi = np.quantile(v, [alpha, 1.0 - alpha])
            out[key] = [float(lo), float(hi)]
    return out


# --- CLI hooks ---------------------------------------------------------------------------------------------------


def add_arguments(group) -> None:
    from common.argtypes import positive_int

    group.add_argument("--css-model", default=DEFAULT_CSS_MODEL, metavar="NAME_OR_PATH",
                       help=f"sentence-transformers model for CSS: a hub id or a local directory "
                            f"(default {DEFAULT_CSS_MODEL}, as FakeShield/LEGION)")
    group.add_argument("--no-css", action="store_true", help="skip CSS (no model is loaded; css is null)")
    group.add_argument("--css-device", metavar="DEVICE",
                       help="cpu, cuda, cuda:N, mps (default: a GPU when there is one, else cpu)")
    group.add_argument("--css-dtype", choices=css.DTYPES, default="auto",
                       help="auto (default): float16 on a CUDA GPU, float32 elsewhere")
    group.add_argument("--css-batch-size", type=positive_int, default=64, metavar="N",
                       help="texts per encode batch (64)")
    group.add_argument("--css-max-seq-length", type=positive_int, metavar="N",
                       help="tokens embedded per text (default: the model's own limit, 128 for the default model; "
                            "longer texts are cut there and counted)")
    group.add_argument("--css-cache", metavar="DIR",
                       help=f"cache of reference embeddings, one folder per model fingerprint (default "
                            f"{css.default_cache_dir()})")
    group.add_argument("--no-css-cache", action="store_true", help="embed the references anew, store nothing")
    group.add_argument("--no-rouge", action="store_true", help="skip ROUGE-L (rouge_l is null)")


def _mean100(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return 100.0 * math.fsum(present) / len(present) if present else None


def _compat_mode(args: Any) -> str | None:
    compat = getattr(args, "compat", False)
    if compat in (False, None):
        return None
    if compat is True or compat == "fakevlm":
        return "fakevlm"
    raise UserError(f"--compat {compat!r} is not a mode of --task {NAME}; use --compat fakevlm (the official FakeVLM "
                    f"verdict rule) or leave it out")


def _css(args: Any, answers: list[str], refs: list[Reference]) -> tuple[list[float | None], dict[str, Any]]:
    """Per-sample CSS (None without a reference answer) and what metrics.json records about it."""
    folder = None
    if not getattr(args, "no_css_cache", False):
        folder = getattr(args, "css_cache", None) or css.default_cache_dir()
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise UserError(f"--css-cache {folder}: cannot write the embedding cache (not a folder); pass another "
                            f"--css-cache DIR or --no-css-cache")
    model = css.load_model(args.css_model, device=getattr(args, "css_device", None),
                           dtype=getattr(args, "css_dtype", "auto"),
                           max_seq_length=getattr(args, "css_max_seq_length", None))
    info: dict[str, Any] = {"model": args.css_model, **css.describe(model)}
    idx = [i for i, r in enumerate(refs) if r.answer is not None]
    predictions, references = [answers[i] for i in idx], [refs[i].answer or "" for i in idx]
    cache = css.EmbeddingCache(folder, css.fingerprint(model)) if folder is not None else None
    info["cache"] = None if cache is None else str(cache.folder)
    long_texts = css.count_truncated(model, (*predictions, *references))
    info["truncated_predictions"] = sum(p in long_texts for p in predictions)
    info["truncated_references"] = sum(r in long_texts for r in references)
    scores, info["from_cache"] = css.css_scores(
        model, predictions, references, batch_size=max(1, int(getattr(args, "css_batch_size", 64))),
        progress=sys.stderr.isatty(), cache=cache)
    out: list[float | None] = [None] * len(refs)
    for i, value in zip(idx, scores, strict=True):
        out[i] = value
    if info["truncated_predictions"] or info["truncated_references"]:
        print(f"warning: CSS: {info['truncated_references']:,} of {len(references):,} reference answers and "
              f"{info['truncated_predictions']:,} of {len(predictions):,} answers are longer than the CSS model's "
              f"max_seq_length ({info['max_seq_length']} tokens) and were embedded truncated (counted in "
              f"metrics.json css; --css-max-seq-length N embeds more, if the model allows)", file=sys.stderr)
    return out, info


OFFLINE = {"no_css": True}  # the report's own scoring loads no model


def score(pairs: list[Pair], args: Any, *, context: ScoreContext) -> Scored:
    compat = _compat_mode(args)
    seed = int(getattr(args, "seed", 0) or 0)
    refs = [read_reference(p.ref, where(context.references, p.ref_line)) for p in pairs]
    rng = random.Random(seed) if compat else None
    scorer: RougeL | bool = False if getattr(args, "no_rouge", False) else RougeL()
    rows = [score_response(p.pred.get("response"), r, official_rng=rng, rouge=scorer)
            for p, r in zip(pairs, refs, strict=True)]
    predicted = [row["label"] for row in rows]
    truths = [r.label for r in refs]
    unparseable_lines = [p.pred_line for p, row in zip(pairs, rows, strict=True)
                         if row["label"] is None or row["guessed"]]
    rouge = None if scorer is False else [row["rouge_l"] for row in rows]
    css_values, css_info = None, None
    if not getattr(args, "no_css", False):
        css_values, css_info = _css(args, [row["answer"] for row in rows], refs)

    def metrics_of(idx: Sequence[int]) -> dict[str, float | None]:
        m = detection_metrics([truths[i] for i in idx], [predicted[i] for i in idx])
        m["rouge_l"] = _mean100(rouge[i] for i in idx) if rouge is not None else None
        m["css"] = _mean100(css_values[i] for i in idx) if css_values is not None else None
        return {k: m[k] for k in METRIC_KEYS}

    def counts_of(idx: Sequence[int]) -> dict[str, int]:
        return {
            "n": len(idx),
            "fake": sum(truths[i] == FAKE for i in idx),
            "real": sum(truths[i] == REAL for i in idx),
            "unparseable": sum(predicted[i] is None or rows[i]["guessed"] for i in idx),
            "predicted_fake": sum(predicted[i] == FAKE for i in idx),
            "predicted_real": sum(predicted[i] == REAL for i in idx),
        }

    everything = range(len(pairs))
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(refs):
        groups.setdefault(r.cate or "(none)", []).append(i)
    counts = counts_of(everything)
    counts["guessed"] = sum(row["guessed"] for row in rows)
    counts["empty"] = sum(not row["answer"] for row in rows)
    counts["without_reference_answer"] = sum(r.answer is None for r in refs)
    issues = Counter(row["issue"] for row in rows if row["issue"])
    notes = Counter(note for row in rows for note in row["notes"])
    return Scored({
        "task": NAME,
        "metrics": metrics_of(everything),
        "counts": counts,
        "ci95": (bootstrap_ci(truths, predicted, rouge, css_values, args.bootstrap, seed)
                 if getattr(args, "bootstrap", 0) else None),
        "by_cate": {name: {"metrics": metrics_of(idx), "counts": counts_of(idx)}
                    for name, idx in sorted(groups.items())},
        "parse": {"parser": "fakevlm (official substring rule, seeded guesses)" if compat else
                  "prompts/fakeclue.py + prompts/verdict_text.py: verdict sentence, negation scope, refusals "
                  "and hedges unparseable",
                  "issues": dict(sorted(issues.items())), "notes": dict(sorted(notes.items())),
                  "unparseable_lines": unparseable_lines[:50]},
        "css": css_info,
        "settings": {"compat": compat, "seed": seed, "f1_paper": "f1_real",
                     "rouge": None if rouge is None else "rouge-score rougeL F-measure, Porter stemmer",
                     "css_model": None if css_info is None else css_info["model"],
                     "bootstrap": getattr(args, "bootstrap", 0)},
        "files": {"predictions": context.predictions, "references": context.references},
        "join": context.join,
    }, list(zip(refs, rows, strict=True)))


# --- table -------------------------------------------------------------------------------------------------------

HEADLINE = (("accuracy", "Acc. ↑"), ("f1_real", "F1 ↑ (real = positive, as the FakeVLM paper)"),
            ("rouge_l", "ROUGE-L ↑"), ("css", "CSS ↑"))
MORE = (("f1_fake", "F1, fake = positive ↑"), ("f1_macro", "F1, macro ↑"), ("fake_accuracy", "Fake Acc. ↑"),
        ("real_accuracy", "Real Acc. ↑"))
CHART_METRICS = (("accuracy", "Acc. ↑", lambda v: v), ("f1_real", "F1 ↑", lambda v: v),
                 ("rouge_l", "ROUGE-L ↑", lambda v: v), ("css", "CSS ↑", lambda v: v))


def metric_rows(task: str) -> list[tuple[str, str, int]]:
    return [(key, title, 1) for key, title in HEADLINE + MORE]


def format_table(result: dict[str, Any]) -> str:
    m, c, ci = result["metrics"], result["counts"], result.get("ci95") or {}
    lines = ["| metric | value | 95% CI |", "|---|---:|---:|"]
    for key, title in HEADLINE + MORE:
        lines.append(f"| {title} | {_fmt(m[key])} | {fmt_ci(ci.get(key))} |")
    lines.append("")
    compat = result["settings"]["compat"]
    parse_note = (f"--compat {compat}: {c['guessed']} verdicts guessed at random (seed {result['settings']['seed']})"
                  if compat else f"unparseable {c['unparseable']} (counted wrong)")
    issues = result["parse"]["issues"]
    if issues and not compat:
        parse_note += " — " + ", ".join(f"{k} {v}" for k, v in issues.items())
    text = f"n = {c['n']} (fake {c['fake']}, real {c['real']}); {parse_note}; empty answers {c['empty']}"
    if c.get("without_reference_answer"):
        text += f"; {c['without_reference_answer']} references without an answer (no ROUGE-L / CSS)"
    if m["css"] is None:
        text += "; CSS skipped (--no-css)"
    lines.append(text)
    info = result.get("css") or {}
    if info.get("truncated_references") or info.get("truncated_predictions"):
        lines.append(f"CSS: {info['truncated_references']} reference answers and {info['truncated_predictions']} "
                     f"answers longer than {info['max_seq_length']} tokens were embedded truncated")
    lines += ["", "| cate | n | Acc. | F1 (real) | F1 (fake) | ROUGE-L | CSS |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, entry in result["by_cate"].items():
        bm = entry["metrics"]
        lines.append(f"| {name} | {entry['counts']['n']} | {_fmt(bm['accuracy'])} | {_fmt(bm['f1_real'])} | "
                     f"{_fmt(bm['f1_fake'])} | {_fmt(bm['rouge_l'])} | {_fmt(bm['css'])} |")
    return "\n".join(lines)


# --- report cards ----------------------------------------------------------------------------------------------------


def report_cards(samples: list[tuple[Reference, dict[str, Any]]], pairs: list[Pair], ctx: CardContext) -> list[dict]:
    """The image, the true and the read verdict (the scorer's own reading), both texts."""
    cards = []
    for (ref, row), pair in zip(samples, pairs, strict=True):
        issue = "guessed at random (--compat fakevlm)" if row["guessed"] else row["issue"]
        cards.append(plain_card(pair, ctx, ref.label, row["label"], row["correct"], issue_chip(issue)))
    return cards
