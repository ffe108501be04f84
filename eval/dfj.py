"""DeepfakeJudge scoring: tasks dfj-pointwise, dfj-pairwise, dfj-detect. See eval/README.md "DeepfakeJudge".

- dfj-pointwise: the judge's `<score>N</score>` against meta.score — RMSE, Pearson, MAE, exact match; the mean
  score always (the only number for judge inputs built from a model's generations, which have no meta.score).
- dfj-pairwise: the judge's `<answer>A|B</answer>` against meta.choice — accuracy; position consistency over pairs
  judged in both orders (meta.pair_id + meta.order AB/BA); the share of A answers; for built inputs the first
  candidate file's win rate (meta.a = the candidate shown as A).
- dfj-detect: the detector's `<answer>real|fake|edited</answer>` against meta.label — accuracy, Real F1, Fake F1,
  edited counting as fake on both sides. dfj-reason references are accepted (their meta.label is the same).
- dfj-reason: dfj-detect's metrics plus the reasoning metrics DeepfakeJudge reports on DFJ-Reason, against the
  reference's human reasoning: BLEU-3 (sacrebleu, corpus and mean sentence score, 0-100) and BERTScore (bert-score,
  mean precision / recall / F1, 0-1), through `eval/text_metrics.py`. Both compare the reasoning texts
  (`prompts.deepfakejudge.reasoning_text`: the `<reasoning>` tag's content, else the text less its answer tag).

`metrics` are over parseable outputs (unparseable ones are counted, listed and excluded); `strict` scores every
output, an unparseable one as the worst case: the valid score farthest from the truth (pointwise), a wrong choice
(pairwise), the wrong class (detect). Accuracies, F1s, exact match, consistency and rates are 0–100; RMSE, MAE and
mean scores are on the 1–5 scale; Pearson is -1..1. 95% CIs: percentile bootstrap over images (all records of an
image, both orders of a pair included, are resampled together).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import UserError, where
from common.join import Pair, assistant_text, media_paths
from eval import text_metrics as T
from eval.report_cards import BAD, GOOD, CardContext, issue_chip, plain_card
from eval.tables import fmt as _fmt
from eval.tables import fmt_ci
from eval.tasks import ScoreContext, Scored
from prompts import deepfakejudge as P

NAME = "dfj"
TASK_NAMES = ("dfj-pointwise", "dfj-pairwise", "dfj-detect", "dfj-reason")
ACCEPTED = {"dfj-pointwise": ("dfj-pointwise",), "dfj-pairwise": ("dfj-pairwise",),
            "dfj-detect": ("dfj-detect", "dfj-reason"), "dfj-reason": ("dfj-reason",)}
OFFLINE: dict[str, Any] = {"no_bertscore": True}  # the report's own scoring loads no model


def add_arguments(group) -> None:
    """BERTScore's settings (dfj-reason only); the shared --bootstrap / --seed set the confidence intervals; --compat
    has no effect (the parsers read the tagged formats only)."""
    from common.argtypes import positive_int

    group.add_argument("--bertscore-model", default=T.DEFAULT_BERTSCORE_MODEL, metavar="NAME_OR_PATH",
                       help=f"dfj-reason: BERTScore's model, a hub name or a local directory (default "
                            f"{T.DEFAULT_BERTSCORE_MODEL}, bert-score's English default)")
    group.add_argument("--bertscore-layers", type=positive_int, metavar="N",
                       help="the layer whose embeddings are compared (default: bert-score's tuned layer for the "
                            "models it knows, 17 for roberta-large; needed for any other model)")
    group.add_argument("--bertscore-rescale", action="store_true",
                       help="rescale with bert-score's baseline for the model (English)")
    group.add_argument("--bertscore-baseline", metavar="FILE",
                       help="with --bertscore-rescale: a baseline file (bert-score's TSV layout) for a model it has "
                            "none for")
    group.add_argument("--bertscore-batch-size", type=positive_int, default=64, metavar="N", help="default 64")
    group.add_argument("--no-bertscore", action="store_true", help="dfj-reason: skip BERTScore (no model is loaded)")


# --- sufficient statistics, so that point estimates and bootstrap replicates share one formula -----------------


def _div(num: np.ndarray, den: np.ndarray, scale: float = 1.0) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, scale * num / np.where(den > 0, den, 1), np.nan)


def _corr_stats(prefix: str, truth: float, pred: float) -> dict[str, float]:
    e = pred - truth
    return {f"{prefix}n": 1, f"{prefix}se": e * e, f"{prefix}ae": abs(e), f"{prefix}exact": float(e == 0),
            f"{prefix}x": truth, f"{prefix}y": pred, f"{prefix}xx": truth * truth, f"{prefix}yy": pred * pred,
            f"{prefix}xy": truth * pred}


def _corr_metrics(s: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    n = s[f"{prefix}n"]
    cov = n * s[f"{prefix}xy"] - s[f"{prefix}x"] * s[f"{prefix}y"]
    vx = n * s[f"{prefix}xx"] - s[f"{prefix}x"] ** 2
    vy = n * s[f"{prefix}yy"] - s[f"{prefix}y"] ** 2
    with np.errstate(invalid="ignore"):
        denom = np.sqrt(np.clip(vx, 0, None) * np.clip(vy, 0, None))
    # Zero variance on either side (or n < 2): Pearson is undefined. Tolerance: sums of small integers are exact.
    pearson = np.where((n >= 2) & (denom > 1e-9), cov / np.where(denom > 1e-9, denom, 1), np.nan)
    return {"rmse": np.sqrt(_div(s[f"{prefix}se"], n)), "pearson": np.clip(pearson, -1, 1),
            "mae": _div(s[f"{prefix}ae"], n), "exact_match": _div(s[f"{prefix}exact"], n, 100)}


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    return _div(2 * tp, 2 * tp + fp + fn, 100)


@dataclass(frozen=True)
class Spec:
    keys: tuple[str, ...]
    metrics: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    strict: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


_CORR = ("n", "se", "ae", "exact", "x", "y", "xx", "yy", "xy")
POINTWISE = Spec(
    keys=("parsed", "pred", *(f"t_{k}" for k in _CORR), *(f"s_{k}" for k in _CORR)),
    metrics=lambda s: {**_corr_metrics(s, "t_"), "mean_score": _div(s["pred"], s["parsed"]),
                       "mean_truth": _div(s["t_x"], s["t_n"])},
    strict=lambda s: _corr_metrics(s, "s_"),
)
PAIRWISE = Spec(
    keys=("parsed", "chose_a", "t_n", "t_correct", "s_n", "s_correct", "pairs", "consistent", "s_pairs",
          "s_consistent", "w_n", "w_first"),
    metrics=lambda s: {"accuracy": _div(s["t_correct"], s["t_n"], 100),
                       "position_consistency": _div(s["consistent"], s["pairs"], 100),
                       "choose_a": _div(s["chose_a"], s["parsed"], 100),
                       "win_rate": _div(s["w_first"], s["w_n"], 100)},
    strict=lambda s: {"accuracy": _div(s["s_correct"], s["s_n"], 100),
                      "position_consistency": _div(s["s_consistent"], s["s_pairs"], 100)},
)
_DETECT = ("n", "correct", "tp_real", "fp_real", "fn_real", "tp_fake", "fp_fake", "fn_fake")


def _detect_metrics(s: dict[str, np.ndarray], p: str) -> dict[str, np.ndarray]:
    return {"accuracy": _div(s[f"{p}correct"], s[f"{p}n"], 100),
            "real_f1": _f1(s[f"{p}tp_real"], s[f"{p}fp_real"], s[f"{p}fn_real"]),
            "fake_f1": _f1(s[f"{p}tp_fake"], s[f"{p}fp_fake"], s[f"{p}fn_fake"])}


DETECT = Spec(keys=(*(f"t_{k}" for k in _DETECT), *(f"s_{k}" for k in _DETECT)),
              metrics=lambda s: _detect_metrics(s, "t_"), strict=lambda s: _detect_metrics(s, "s_"))


def _detect_stats(prefix: str, truth_fake: bool, pred_fake: bool) -> dict[str, float]:
    return {f"{prefix}n": 1, f"{prefix}correct": float(truth_fake == pred_fake),
            f"{prefix}tp_real": float(not truth_fake and not pred_fake),
            f"{prefix}fp_real": float(truth_fake and not pred_fake),
            f"{prefix}fn_real": float(not truth_fake and pred_fake),
            f"{prefix}tp_fake": float(truth_fake and pred_fake),
            f"{prefix}fp_fake": float(not truth_fake and pred_fake),
            f"{prefix}fn_fake": float(truth_fake and not pred_fake)}


def _value(x: Any) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def estimate(spec: Spec, rows: list[dict[str, float]], clusters: list[str], replicates: int,
             seed: int) -> tuple[dict[str, float | None], dict[str, float | None], dict[str, list[float]] | None]:
    """(metrics, strict, ci95 of metrics) from per-record statistics; the bootstrap resamples clusters."""
    stats = np.array([[row.get(k, 0.0) for k in spec.keys] for row in rows], dtype=float).reshape(len(rows),
                                                                                                   len(spec.keys))
    total = {k: stats[:, i].sum() for i, k in enumerate(spec.keys)}
    metrics = {k: _value(v) for k, v in spec.metrics({k: np.asarray(v) for k, v in total.items()}).items()}
    strict = {k: _value(v) for k, v in spec.strict({k: np.asarray(v) for k, v in total.items()}).items()}
    if not replicates:
        return metrics, strict, None
    ids: dict[str, int] = {}
    index = np.array([ids.setdefault(c, len(ids)) for c in clusters])
    per_cluster = np.zeros((len(ids), len(spec.keys)))
    np.add.at(per_cluster, index, stats)
    rng = np.random.default_rng(seed)
    n_clusters = len(ids)
    draws: dict[str, list[np.ndarray]] = {}
    for start in range(0, replicates, 64):
        size = min(64, replicates - start)
        counts = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=size)
        sums = counts @ per_cluster
        for k, v in spec.metrics({k: sums[:, i] for i, k in enumerate(spec.keys)}).items():
            draws.setdefault(k, []).append(v)
    ci = {}
    for k, parts in draws.items():
        values = np.concatenate(parts)
        values = values[np.isfinite(values)]
        ci[k] = [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if len(values) else None
    return metrics, strict, ci


# --- references and predictions --------------------------------------------------------------------------------


def task_of(pairs: list[Pair], args: Any, context: ScoreContext) -> str:
    name = getattr(args, "task", None)
    if name is None:
        meta = pairs[0].ref.get("meta")
        name = meta.get("task") if isinstance(meta, dict) else None
    if name not in TASK_NAMES:
        raise UserError(f"{context.references}: cannot tell the DeepfakeJudge task ({name!r}); pass --task "
                        f"{' | '.join(TASK_NAMES)}")
    return name


def read_meta(pair: Pair, task: str, context: ScoreContext) -> tuple[dict[str, Any], str]:
    ctx = where(context.references, pair.ref_line)
    meta = pair.ref.get("meta")
    if not isinstance(meta, dict):
        raise UserError(f"{ctx}: no 'meta' object; references must be converter output "
                        f"(converters/deepfakejudge_to_swift.py)")
    if meta.get("task") not in ACCEPTED[task]:
        raise UserError(f"{ctx}: meta.task is {meta.get('task')!r}; --task {task} reads "
                        f"{' or '.join(ACCEPTED[task])} references")
    return meta, ctx


def cluster_of(pair: Pair) -> str:
    images = media_paths(pair.ref, "images")
    return os.path.normpath(images[0]) if images else f"line {pair.ref_line}"


def _truth(meta: dict[str, Any], key: str, allowed: tuple, ctx: str, optional: bool) -> Any:
    value = meta.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or value not in allowed:
        raise UserError(f"{ctx}: meta.{key} must be {'null or ' if optional else ''}one of "
                        f"{', '.join(map(str, allowed))} (got {value!r})")
    return value


def _parse_all(pairs: list[Pair], parse) -> tuple[list[P.Parsed], Counter[str], list[int]]:
    parsed = [parse(p.pred.get("response")) for p in pairs]
    issues = Counter(x.issue for x in parsed if x.value is None)
    return parsed, issues, [p.pred_line for p, x in zip(pairs, parsed, strict=True) if x.value is None]


def score_pointwise(pairs: list[Pair], task: str, context: ScoreContext) -> tuple:
    rows, truths = [], []
    parsed, issues, bad = _parse_all(pairs, P.parse_score)
    for pair, got in zip(pairs, parsed, strict=True):
        meta, ctx = read_meta(pair, task, context)
        truth = _truth(meta, "score", P.SCORES, ctx, optional=True)
        truths.append(truth)
        row: dict[str, float] = {}
        if got.value is not None:
            row.update(parsed=1, pred=got.value)
            if truth is not None:
                row.update(_corr_stats("t_", truth, got.value))
        if truth is not None:
            # strict: an unparseable output counts as the valid score farthest from the truth (1 on a tie at 3)
            worst = 5 if truth - 1 < 5 - truth else 1
            row.update(_corr_stats("s_", truth, got.value if got.value is not None else worst))
        rows.append(row)
    counts = {"n": len(pairs), "with_truth": sum(t is not None for t in truths), "parsed": len(pairs) - len(bad),
              "unparseable": len(bad),
              "predicted": {str(s): sum(x.value == s for x in parsed) for s in P.SCORES},
              "truth": {str(s): truths.count(s) for s in P.SCORES}}
    return POINTWISE, rows, counts, issues, bad, list(zip(truths, parsed, strict=True))


def score_pairwise(pairs: list[Pair], task: str, context: ScoreContext) -> tuple:
    parsed, issues, bad = _parse_all(pairs, P.parse_choice)
    rows: list[dict[str, float]] = []
    truths: list[str | None] = []
    groups: dict[str, dict[str, int]] = {}
    with_truth = 0
    for i, (pair, got) in enumerate(zip(pairs, parsed, strict=True)):
        meta, ctx = read_meta(pair, task, context)
        truth = _truth(meta, "choice", P.CHOICES, ctx, optional=True)
        truths.append(truth)
        a = _truth(meta, "a", (0, 1), ctx, optional=True)
        row: dict[str, float] = {}
        if got.value is not None:
            row.update(parsed=1, chose_a=float(got.value == "A"))
            if a is not None:
                row.update(w_n=1, w_first=float((a if got.value == "A" else 1 - a) == 0))
        if truth is not None:
            with_truth += 1
            row.update(s_n=1, s_correct=float(got.value == truth))
            if got.value is not None:
                row.update(t_n=1, t_correct=float(got.value == truth))
        rows.append(row)
        pair_id, order = meta.get("pair_id"), meta.get("order")
        if pair_id is None:
            continue
        if order not in ("AB", "BA"):
            raise UserError(f"{ctx}: meta.order must be AB or BA when meta.pair_id is set (got {order!r})")
        group = groups.setdefault(str(pair_id), {})
        if order in group:
            raise UserError(f"{ctx}: pair {pair_id!r} in order {order} occurs twice (line "
                            f"{pairs[group[order]].ref_line} too); were references concatenated twice?")
        group[order] = i
    both = 0
    for group in groups.values():
        if len(group) < 2:
            continue
        both += 1
        ab, ba = parsed[group["AB"]].value, parsed[group["BA"]].value
        # The same response wins in both orders iff the letters differ (A in one order is B in the other).
        row = rows[group["AB"]]
        row.update(s_pairs=1, s_consistent=float(ab is not None and ba is not None and ab != ba))
        if ab is not None and ba is not None:
            row.update(pairs=1, consistent=float(ab != ba))
    counts = {"n": len(pairs), "with_truth": with_truth, "parsed": len(pairs) - len(bad), "unparseable": len(bad),
              "pairs_both_orders": both, "chose": {c: sum(x.value == c for x in parsed) for c in P.CHOICES}}
    return PAIRWISE, rows, counts, issues, bad, list(zip(truths, parsed, strict=True))


def score_detect(pairs: list[Pair], task: str, context: ScoreContext) -> tuple:
    parsed, issues, bad = _parse_all(pairs, P.parse_label)
    rows, truths = [], []
    for pair, got in zip(pairs, parsed, strict=True):
        meta, ctx = read_meta(pair, task, context)
        truth = _truth(meta, "label", P.LABELS, ctx, optional=False)
        truths.append(truth)
        truth_fake = P.is_fake(truth)
        pred_fake = P.is_fake(got.value) if got.value is not None else not truth_fake  # strict: the wrong class
        row = _detect_stats("s_", truth_fake, pred_fake)
        if got.value is not None:
            row.update(_detect_stats("t_", truth_fake, pred_fake))
        rows.append(row)
    recall = {}
    for label in P.LABELS:
        hits = [P.is_fake(x.value) == P.is_fake(label) for x, t in zip(parsed, truths, strict=True)
                if t == label and x.value is not None]
        recall[label] = 100.0 * sum(hits) / len(hits) if hits else None
    counts = {"n": len(pairs), "parsed": len(pairs) - len(bad), "unparseable": len(bad),
              "truth": {label: truths.count(label) for label in P.LABELS},
              "predicted": {label: sum(x.value == label for x in parsed) for label in P.LABELS}}
    return DETECT, rows, counts, issues, bad, list(zip(truths, parsed, strict=True)), recall


_REASON_MEANS = {"bleu3_sentence": "bleu_s", "bertscore_precision": "bs_p", "bertscore_recall": "bs_r",
                 "bertscore_f1": "bs_f"}


def _reason_spec(with_bertscore: bool) -> Spec:
    """dfj-detect's statistics plus per-sample reasoning scores, averaged over the samples with a reference."""
    means = {k: v for k, v in _REASON_MEANS.items() if with_bertscore or not k.startswith("bertscore")}

    def reasoning(s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: _div(s[v], s["r_n"]) for k, v in means.items()}

    return Spec(keys=(*DETECT.keys, "r_n", *means.values()),
                metrics=lambda s: {**DETECT.metrics(s), **reasoning(s)},
                strict=lambda s: {**DETECT.strict(s), **reasoning(s)})


def score_reason(pairs: list[Pair], task: str, context: ScoreContext, args: Any) -> tuple:
    """dfj-detect's scoring plus BLEU-3 and BERTScore of each answer's reasoning against the reference's."""
    _, rows, counts, issues, bad, samples, recall = score_detect(pairs, task, context)
    idx, hyps, refs = [], [], []
    for i, pair in enumerate(pairs):
        reference = P.reasoning_text(assistant_text(pair.ref))
        if reference:
            idx.append(i)
            hyps.append(P.reasoning_text(pair.pred.get("response")))
            refs.append(reference)
    with_bertscore = not getattr(args, "no_bertscore", False)
    reasoning: dict[str, Any] = {"n": len(idx), "without_reference": len(pairs) - len(idx),
                                 "empty_answers": sum(not h.strip() for h in hyps), "bleu3": None, "bleu": None,
                                 "bertscore": None}
    if idx:
        bleu = T.bleu3(hyps, refs)
        reasoning.update(bleu3=bleu.corpus, bleu=bleu.signature)
        for i, value in zip(idx, bleu.sentence, strict=True):
            rows[i].update(r_n=1, bleu_s=value)
        if with_bertscore:
            scorer = T.BertScore(args.bertscore_model, layers=args.bertscore_layers, rescale=args.bertscore_rescale,
                                 baseline=args.bertscore_baseline, batch_size=args.bertscore_batch_size)
            reasoning["bertscore"] = scorer.settings
            for i, p, r, f in zip(idx, *scorer.score(hyps, refs), strict=True):
                rows[i].update(bs_p=p, bs_r=r, bs_f=f)
    return _reason_spec(with_bertscore), rows, counts, issues, bad, samples, recall, reasoning


def score(pairs: list[Pair], args: Any, *, context: ScoreContext) -> Scored:
    task = task_of(pairs, args, context)
    extra: dict[str, Any] = {}
    if task == "dfj-pointwise":
        spec, rows, counts, issues, bad, samples = score_pointwise(pairs, task, context)
    elif task == "dfj-pairwise":
        spec, rows, counts, issues, bad, samples = score_pairwise(pairs, task, context)
    elif task == "dfj-detect":
        spec, rows, counts, issues, bad, samples, recall = score_detect(pairs, task, context)
        extra["recall_by_label"] = recall
    else:
        spec, rows, counts, issues, bad, samples, recall, reasoning = score_reason(pairs, task, context, args)
        extra.update(recall_by_label=recall, reasoning=reasoning)
    metrics, strict, ci = estimate(spec, rows, [cluster_of(p) for p in pairs], args.bootstrap, args.seed)
    if task == "dfj-reason":  # a corpus score, not a mean of per-sample values: sacrebleu's number, no interval
        metrics["bleu3"] = strict["bleu3"] = extra["reasoning"]["bleu3"]
        if ci is not None:
            ci["bleu3"] = None
    candidates = {tuple(c) for p in pairs if isinstance(c := (p.ref.get("meta") or {}).get("candidates"), list)}
    return Scored({
        "task": task,
        "metrics": metrics,
        "strict": strict,
        "counts": counts,
        "ci95": ci,
        **extra,
        "candidates": list(candidates.pop()) if len(candidates) == 1 else None,
        "parse": {"issues": dict(sorted(issues.items())), "unparseable_lines": bad[:50]},
        "settings": {"bootstrap": args.bootstrap, "seed": args.seed, "ci_clusters": "image",
                     "strict": "unparseable = worst case"},
        "files": {"predictions": context.predictions, "references": context.references},
        "join": context.join,
    }, samples)


# --- table -------------------------------------------------------------------------------------------------------

ROWS = {
    "dfj-pointwise": (("rmse", "RMSE ↓", 2), ("pearson", "Pearson ↑", 2), ("mae", "MAE ↓", 2),
                      ("exact_match", "Exact match ↑", 1), ("mean_score", "Mean score", 2)),
    "dfj-pairwise": (("accuracy", "Accuracy ↑", 1), ("position_consistency", "Position consistency ↑", 1),
                     ("choose_a", "Chose A", 1), ("win_rate", "Win rate (first candidates file)", 1)),
    "dfj-detect": (("accuracy", "Acc. ↑", 1), ("real_f1", "Real F1 ↑", 1), ("fake_f1", "Fake F1 ↑", 1)),
    "dfj-reason": (("accuracy", "Acc. ↑", 1), ("real_f1", "Real F1 ↑", 1), ("fake_f1", "Fake F1 ↑", 1),
                   ("bleu3", "BLEU-3 (corpus, 0–100) ↑", 2), ("bleu3_sentence", "BLEU-3 (sentence mean) ↑", 2),
                   ("bertscore_f1", "BERTScore F1 ↑", 3), ("bertscore_precision", "BERTScore P", 3),
                   ("bertscore_recall", "BERTScore R", 3)),
}


CHART_METRICS: tuple = ()  # no categories in DeepfakeJudge references


def metric_rows(task: str) -> list[tuple[str, str, int]]:
    return list(ROWS.get(task, ()))


def format_table(result: dict[str, Any]) -> str:
    task, m, s, c = result["task"], result["metrics"], result["strict"], result["counts"]
    ci = result.get("ci95") or {}
    lines = [f"| {task} | value | 95% CI | strict (unparseable = worst) |", "|---|---:|---:|---:|"]
    for key, title, digits in ROWS[task]:
        lines.append(f"| {title} | {_fmt(m.get(key), digits)} | {fmt_ci(ci.get(key), digits)} | "
                     f"{_fmt(s.get(key), digits)} |")
    lines.append("")
    text = f"n = {c['n']}; parsed {c['parsed']}, unparseable {c['unparseable']} (excluded from 'value')"
    if task == "dfj-pairwise":
        text += f"; with a true choice {c['with_truth']}; pairs judged in both orders {c['pairs_both_orders']}"
    elif task == "dfj-pointwise":
        text += f"; with a true score {c['with_truth']}"
    else:
        text += "; truth " + ", ".join(f"{k} {v}" for k, v in c["truth"].items())
        recall = result.get("recall_by_label") or {}
        text += "; recall " + ", ".join(f"{k} {_fmt(v, 1)}" for k, v in recall.items())
    lines.append(text)
    reasoning = result.get("reasoning")
    if reasoning is not None:
        bert = reasoning["bertscore"]
        used = ("skipped (--no-bertscore)" if bert is None else
                f"{bert['model']} layer {bert['layers']}" + (", rescaled" if bert["rescale"] else ""))
        lines.append(f"reasoning: {reasoning['n']} answers against a reference reasoning "
                     f"({reasoning['without_reference']} references without one; {reasoning['empty_answers']} empty "
                     f"answers score 0); BLEU-3 {reasoning['bleu']}; BERTScore {used}")
    if result.get("candidates"):
        lines.append("candidates: " + ", ".join(result["candidates"]))
    return "\n".join(lines)


# --- report cards ----------------------------------------------------------------------------------------------------


def report_cards(samples: list[tuple[Any, P.Parsed]], pairs: list[Pair], ctx: CardContext) -> list[dict[str, Any]]:
    """The image, the true and the read score / choice / label (the scorer's own reading), both texts."""
    cards = []
    for (truth, got), pair in zip(samples, pairs, strict=True):
        chips = issue_chip(got.issue)
        pred = got.value
        if ctx.task == "dfj-pointwise":
            correct = None if truth is None or pred is None else truth == pred
            if truth is not None and pred is not None:
                error = abs(pred - truth)
                chips.append(["|error|", f"{error:g}", GOOD if error == 0 else BAD if error >= 2 else ""])
        elif ctx.task == "dfj-pairwise":
            correct = None if truth is None else truth == pred
        else:
            correct = pred is not None and P.is_fake(pred) == P.is_fake(truth)
        cards.append(plain_card(pair, ctx, truth, pred, correct, chips))
    return cards
