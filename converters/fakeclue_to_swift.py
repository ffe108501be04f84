#!/usr/bin/env python
"""FakeClue annotations (FakeVLM's `train.json` / `test.json`, or any benchmark in that format) → ms-swift JSONL.

The input is a JSON array of records `{image, label (0 = fake, 1 = real), cate, width, height, conversations:
[{from: human, value: "<image>Does the image looks real/fake?"}, {from: gpt, value: "This is a fake image. ..."}]}`,
read as a stream (memory does not grow with the file; JSON Lines is read too). Each record becomes one ms-swift row:
`messages` (human → user, gpt → assistant; exactly one `<image>` tag, at the start of the first user turn, as LLaVA's
own preprocessing puts it), `images` (one absolute path) and `meta` (task, label, cate, the reference answer, ...).
A record with only the human turn (an evaluation-only layout) becomes a question-only row for `swift infer`.
`--limit N` keeps a seeded subset stratified by (cate, label) (the files are ordered by category). See
converters/README.md.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

from common.argtypes import positive_int  # noqa: E402
from common.errors import UserError, run_cli, where  # noqa: E402
from common.jsonl import atomic_open, dumps, iter_jsonl, write_json  # noqa: E402
from prompts.fakeclue import FAKE, IMAGE_TAG, REAL, parse  # noqa: E402

TASK = "fakeclue"
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
LABELS = {0: FAKE, 1: REAL, "0": FAKE, "1": REAL, "fake": FAKE, "real": REAL}
_TAG_WITH_SPACE = re.compile(r"[ \t]*<image>[ \t]*\n?")
MAX_LISTED = 100  # records listed per problem in the stats file

EXAMPLES = """\
examples:
  python converters/fakeclue_to_swift.py FakeClue/data_json/train.json --image-root FakeClue/train \\
      --out data/fakeclue/train.jsonl
  python converters/fakeclue_to_swift.py FakeClue/data_json/test.json --image-root FakeClue/test \\
      --out data/fakeclue/test.jsonl --limit 500 --seed 0      # a stratified 500-image subset
"""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: a bad flag becomes a `UserError` (`prog: error: …`, exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="fakeclue_to_swift.py", description=__doc__, epilog=EXAMPLES,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("annotation", type=Path, help="FakeClue train.json / test.json (a JSON array; JSON Lines accepted)")
    p.add_argument("--image-root", type=Path, required=True, metavar="DIR",
                   help="directory the records' `image` paths are relative to (e.g. FakeClue's train/ or test/)")
    p.add_argument("--out", type=Path, required=True, metavar="OUT.jsonl",
                   help="ms-swift JSONL to write (atomically); statistics go to OUT.stats.json beside it")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="keep N records, a random subset stratified by (cate, label), in file order")
    p.add_argument("--seed", type=int, default=0, help="seed of --limit's subset (default 0)")
    p.add_argument("--skip-missing", action="store_true",
                   help="skip records whose image is missing (listed in the stats file) instead of failing")
    p.add_argument("--strict", action="store_true",
                   help="fail on a reference answer whose verdict contradicts the record's label, or has none "
                        "(default: counted and listed in the stats file)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line")
    return p


# --- reading -------------------------------------------------------------------------------------------------------


def read_records(path: Path) -> Iterator[tuple[str, Any]]:
    """(context, record) for each record of a JSON array (streamed with ijson) or a JSON Lines file."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the annotation file: {exc.strerror or exc}") from None
    with fh:
        head = fh.read(4096)
        body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
        first = body.lstrip()[:1]
        if not first:
            raise UserError(f"{path}: the annotation file is empty")
        if first == b"{":
            fh.close()
            for lineno, rec in iter_jsonl(path):
                yield where(path, lineno), rec
            return
        if first != b"[":
            raise UserError(f"{path}: expected a JSON array of FakeClue records (train.json / test.json) or JSON Lines")
        fh.seek(len(head) - len(body))
        import ijson

        n = 0
        try:
            for rec in ijson.items(fh, "item", use_float=True):
                n += 1
                yield f"{path}: record {n}", rec
        except ijson.JSONError as exc:
            raise UserError(f"{path}: invalid JSON after record {n}: {' '.join(str(exc).split())}") from None
        if n == 0:
            raise UserError(f"{path}: the annotation file is an empty JSON array")


# --- one record ------------------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def convert_record(rec: Any, ctx: str, image_root: Path, counter: Counter) -> tuple[dict, str]:
    """(ms-swift row, absolute image path) of one FakeClue record; a UserError naming the record if it is unusable."""
    if not isinstance(rec, dict):
        raise UserError(f"{ctx}: expected an object, got {type(rec).__name__}")
    image = rec.get("image")
    if not isinstance(image, str) or not image.strip():
        raise UserError(f"{ctx}: `image` must be a non-empty path string (got {image!r})")
    raw_label = rec.get("label")
    key = raw_label.strip().lower() if isinstance(raw_label, str) else raw_label
    if isinstance(raw_label, bool) or key not in LABELS:
        raise UserError(f"{ctx} ({image}): `label` must be 0 (fake) or 1 (real), got {raw_label!r}")
    label = LABELS[key]
    cate = rec.get("cate")
    if cate is not None and not isinstance(cate, str):
        raise UserError(f"{ctx} ({image}): `cate` must be a string, got {cate!r}")
    conversations = rec.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise UserError(f"{ctx} ({image}): `conversations` must be a non-empty list of {{from, value}} turns")
    messages = []
    for i, turn in enumerate(conversations, 1):
        if not (isinstance(turn, dict) and isinstance(turn.get("from"), str) and isinstance(turn.get("value"), str)):
            raise UserError(f"{ctx} ({image}): conversations[{i}] must be {{\"from\": ..., \"value\": \"...\"}}")
        role = ROLES.get(turn["from"].strip().lower())
        if role is None:
            raise UserError(f"{ctx} ({image}): conversations[{i}] is from {turn['from']!r}; expected human or gpt")
        messages.append({"role": role, "content": turn["value"]})
    dialogue = messages[1:] if messages[0]["role"] == "system" else messages
    expected = ["user", "assistant"] * ((len(dialogue) + 1) // 2)
    question_only = [m["role"] for m in dialogue] == ["user"]  # an evaluation-only record: converted for inference
    if not question_only and ([m["role"] for m in dialogue] != expected[: len(dialogue)] or len(dialogue) % 2):
        roles = ", ".join(t.get("from", "?") if isinstance(t, dict) else "?" for t in conversations)
        raise UserError(f"{ctx} ({image}): conversations must alternate human, gpt and end with gpt, or be the one "
                        f"human turn of an evaluation-only record (got {roles})")

    # One <image> tag, at the start of the first user turn (LLaVA's preprocessing moves it there too).
    tags = sum(_text(m["content"]).count(IMAGE_TAG) for m in messages)
    first = dialogue[0]
    if tags != 1 or not first["content"].startswith(IMAGE_TAG):
        counter["image_tag_added" if tags == 0 else "image_tag_moved_or_merged"] += 1
    for m in messages:
        if IMAGE_TAG in m["content"]:
            m["content"] = _TAG_WITH_SPACE.sub("", m["content"]).strip()
    if not first["content"].startswith(IMAGE_TAG):
        first["content"] = IMAGE_TAG + first["content"]
    answer = None if question_only else dialogue[-1]["content"]
    if answer is not None and not answer.strip():
        raise UserError(f"{ctx} ({image}): the gpt answer is empty")
    if question_only:
        counter["question_only"] += 1

    path = os.path.normpath(image if os.path.isabs(image) else os.path.join(image_root, image))
    meta: dict[str, Any] = {"task": TASK, "label": label, "cate": cate, "answer": answer, "image": image}
    for key in ("width", "height"):
        value = rec.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            meta[key] = value
    return {"messages": messages, "images": [path], "meta": meta}, path


def check_answer(sample: dict, ctx: str, strict: bool, counter: Counter, listed: dict[str, list]) -> None:
    """Count (or, with --strict, reject) a reference answer whose verdict is missing or contradicts the label."""
    meta = sample["meta"]
    if meta["answer"] is None:  # a question-only record: nothing to check
        return
    verdict = parse(meta["answer"]).label
    problem = None
    if verdict is None:
        problem = "answer_without_verdict"
    elif verdict != meta["label"]:
        problem = "answer_contradicts_label"
    if problem is None:
        return
    if strict:
        what = "states no verdict" if verdict is None else f"says {verdict}"
        raise UserError(f"{ctx} ({meta['image']}): the gpt answer {what} but the label is {meta['label']} (--strict)")
    counter[problem] += 1
    if len(listed[problem]) < MAX_LISTED:
        listed[problem].append(ctx.rsplit(": ", 1)[-1])


# --- subset --------------------------------------------------------------------------------------------------------


def stratified_subset(strata: list[tuple[str, str]], limit: int, seed: int) -> set[int]:
    """Indices of `limit` records: each (cate, label) stratum gets its proportional share (largest remainders,
    ties to the larger stratum, then by name), drawn with `random.Random(seed)` in stratum order."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(strata):
        groups.setdefault(key, []).append(i)
    total = len(strata)
    if limit >= total:
        return set(range(total))
    exact = {k: limit * len(v) / total for k, v in groups.items()}
    quota = {k: math.floor(x) for k, x in exact.items()}
    spare = limit - sum(quota.values())
    for k in sorted(groups, key=lambda k: (-(exact[k] - quota[k]), -len(groups[k]), k))[:spare]:
        quota[k] += 1
    rng = random.Random(seed)
    chosen: set[int] = set()
    for k in sorted(groups):
        chosen.update(rng.sample(groups[k], quota[k]))
    return chosen


# --- main ----------------------------------------------------------------------------------------------------------


def stats_path(out: Path) -> Path:
    return out.with_name((out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name) + ".stats.json")


def _key(sample: dict) -> tuple[str, str]:
    return (sample["meta"]["cate"] or "", sample["meta"]["label"])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    annotation: Path = args.annotation
    if not annotation.is_file():
        raise UserError(f"{annotation}: annotation file not found")
    image_root = args.image_root.resolve()
    if not image_root.is_dir():
        raise UserError(f"{args.image_root}: --image-root directory not found")
    if args.out.suffix != ".jsonl":
        raise UserError(f"--out {args.out}: expected a .jsonl file name")
    progress = not args.quiet

    def records(desc: str) -> Iterator[tuple[str, Any]]:
        return tqdm(read_records(annotation), desc=desc, unit="rec", disable=None if progress else True)

    counter: Counter = Counter()
    listed: dict[str, list] = {"answer_without_verdict": [], "answer_contradicts_label": []}
    missing: list[dict] = []
    seen: set[str] = set()

    def usable(ctx: str, rec: Any) -> dict | None:
        counter["records_read"] += 1
        sample, path = convert_record(rec, ctx, image_root, counter)
        if not os.path.isfile(path):
            counter["missing_images"] += 1
            if len(missing) < MAX_LISTED:
                missing.append({"record": ctx.rsplit(": ", 1)[-1], "image": sample["meta"]["image"], "path": path})
            return None
        check_answer(sample, ctx, args.strict, counter, listed)
        if path in seen:
            counter["duplicate_images"] += 1
        seen.add(path)
        return sample

    def missing_error() -> UserError:
        shown = ", ".join(f"{m['image']} ({m['record']})" for m in missing[:5])
        more = f" and {counter['missing_images'] - 5} more" if counter["missing_images"] > 5 else ""
        return UserError(f"{counter['missing_images']} image(s) not found under {image_root}: {shown}{more} "
                         f"(set --image-root, or pass --skip-missing to skip them)")

    chosen: set[int] | None = None
    if args.limit:
        # Pass 1: validate everything and learn each usable record's stratum; pass 2 streams the chosen ones out.
        strata: list[tuple[str, str]] = []
        positions: list[int] = []
        for n, (ctx, rec) in enumerate(records("reading")):
            sample = usable(ctx, rec)
            if sample is not None:
                strata.append(_key(sample))
                positions.append(n)
        if counter["missing_images"] and not args.skip_missing:
            raise missing_error()
        chosen = {positions[i] for i in stratified_subset(strata, args.limit, args.seed)}

    written: Counter = Counter()
    out = args.out
    with atomic_open(out) as fh:
        for n, (ctx, rec) in enumerate(records("writing" if chosen is not None else "converting")):
            if chosen is not None:
                if n not in chosen:
                    continue
                sample, _ = convert_record(rec, ctx, image_root, Counter())
            else:
                sample = usable(ctx, rec)
                if sample is None:
                    continue
            fh.write(dumps(sample) + "\n")
            written[_key(sample)] += 1
        if counter["missing_images"] and not args.skip_missing:
            raise missing_error()
        total = sum(written.values())
        if total == 0:
            raise UserError(f"{annotation}: no samples written ({counter['records_read']} records, "
                            f"{counter['missing_images']} with missing images)")
        by_cate: dict[str, dict[str, int]] = {}
        for (cate, label), k in sorted(written.items()):
            by_cate.setdefault(cate or "(none)", {FAKE: 0, REAL: 0})[label] += k
        stats = {
            "tool": "fakeclue_to_swift", "input": str(annotation.resolve()), "image_root": str(image_root),
            "output": str(out.resolve()),
            "samples": total, "fake": sum(v[FAKE] for v in by_cate.values()),
            "real": sum(v[REAL] for v in by_cate.values()), "by_cate": by_cate,
            "subset": ({"limit": args.limit, "seed": args.seed, "rule": "stratified by (cate, label), proportional "
                        "(largest remainders), in file order"} if args.limit else None),
            "records_read": counter["records_read"],
            "skipped": {"missing_images": counter["missing_images"]},
            "adjusted": {"image_tag_added": counter["image_tag_added"],
                         "image_tag_moved_or_merged": counter["image_tag_moved_or_merged"]},
            "question_only": counter["question_only"],
            "checks": {"answer_without_verdict": counter["answer_without_verdict"],
                       "answer_contradicts_label": counter["answer_contradicts_label"],
                       "duplicate_images": counter["duplicate_images"],
                       "records": listed},
            "missing_images": missing,
        }
        write_json(stats_path(out), stats)
    if progress:
        cates = len(by_cate)
        print(f"wrote {out}: {total:,} samples ({stats['fake']:,} fake, {stats['real']:,} real; {cates} "
              f"categor{'y' if cates == 1 else 'ies'}) from {counter['records_read']:,} records; "
              f"stats {stats_path(out)}")
        if counter["missing_images"]:
            print(f"skipped {counter['missing_images']} records whose image is missing (listed in the stats file)")
        if counter["question_only"]:
            print(f"{counter['question_only']:,} records have only the human turn: written without an answer, for "
                  f"inference (eval/score.py reports no ROUGE-L / CSS for them)")
        checks = counter["answer_without_verdict"] + counter["answer_contradicts_label"]
        if checks:
            print(f"note: {checks} reference answers state no verdict or contradict their label (see the stats file)")
    return 0


if __name__ == "__main__":
    run_cli(main)
