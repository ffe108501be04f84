"""`python eval/score.py` reads gzip-compressed predictions and references (and a byte-order mark) transparently:
the metrics are those of the plain files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from eval import score
from tests.support.cli import run_main
from tests.support.eval_samples import prediction, standard_set, write

ROOT = Path(__file__).resolve().parents[2]


def _score(preds: Path, refs: Path, out: Path) -> dict:
    proc = run_main(score.main, ["--predictions", preds, "--references", refs, "--no-judge", "--bootstrap", "0",
                                 "--out", out], prog=ROOT / "eval" / "score.py")
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())["metrics"]


def test_gzip_inputs_score_like_plain_ones(tmp_path):
    refs = standard_set()
    preds = [prediction(r) for r in refs]
    preds[0] = prediction(refs[0], "REAL. The video is real. There is no unnatural part.")  # not all perfect
    plain = _score(write(tmp_path / "preds.jsonl", preds), write(tmp_path / "refs.jsonl", refs), tmp_path / "a.json")
    for name in ("preds.jsonl", "refs.jsonl"):
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(b"\xef\xbb\xbf" + (tmp_path / name).read_bytes()))
    packed = _score(tmp_path / "preds.jsonl.gz", tmp_path / "refs.jsonl.gz", tmp_path / "b.json")
    assert packed == plain and plain["accuracy"] < 100
