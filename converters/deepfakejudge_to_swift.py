#!/usr/bin/env python
"""DeepfakeJudge data → ms-swift JSONL, and DeepfakeJudge judge inputs built from any model's generations.

Convert a released split (`images/` + `data.jsonl`; records already in ms-swift form, `messages` + `images` with paths
relative to the split directory):

    python converters/deepfakejudge_to_swift.py SPLIT_DIR --out OUT.jsonl [--task auto] [--both-orders]

Each record is validated (roles, `<image>` tags vs. images, a non-empty assistant target), its image paths are made
absolute, and `meta` is added: `task` (dfj-pointwise | dfj-pairwise | dfj-detect | dfj-reason) and the ground truth
parsed from the target (`<score>N</score>` → meta.score, `<answer>A|B</answer>` → meta.choice,
`<answer>real|fake|edited</answer>` → meta.label). The released schema beyond `messages`/`images` is not public: any
other key stops the conversion with a clear error unless `--extra-keys keep|drop` says what to do with it.

Build judge inputs from generations (`swift infer` result files, e.g. FakeClue or DFJ-Detect predictions) and the
references they were generated from (converter output with meta.label = real | fake | edited):

    python converters/deepfakejudge_to_swift.py --build pointwise --candidates PREDS.jsonl --references REFS.jsonl \\
        --out judge_in.jsonl
    python converters/deepfakejudge_to_swift.py --build pairwise --candidates A.jsonl B.jsonl --references REFS.jsonl \\
        --both-orders --out judge_in.jsonl

The prompts are the upstream templates (prompts/deepfakejudge/*.txt, stored byte-exact with CRLF) as upstream's
inference reads them — in text mode, so with LF line endings (`--prompt-newlines crlf`: the stored bytes) — with the
placeholders filled by name, after one `<image>` tag per image. See converters/README.md "DeepfakeJudge".
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import UserError, run_cli, where  # noqa: E402
from common.join import join  # noqa: E402
from common.jsonl import iter_jsonl, write_jsonl  # noqa: E402
from prompts import deepfakejudge as P  # noqa: E402

TASKS = ("dfj-pointwise", "dfj-pairwise", "dfj-detect", "dfj-reason")
KNOWN_KEYS = ("messages", "images", "answer")  # `answer`: the label of a dfj-detect / dfj-reason record
MESSAGE_KEYS = ("role", "content")
# What each task's assistant target must contain, and where the parsed ground truth goes in meta.
TARGETS = {
    "dfj-pointwise": ("score", P.parse_score, "<score>N</score> with N in 1..5"),
    "dfj-pairwise": ("choice", P.parse_choice, "<answer>A</answer> or <answer>B</answer>"),
    "dfj-detect": ("label", P.parse_label, "<answer>real|fake|edited</answer>"),
    "dfj-reason": ("label", P.parse_label, "<answer>real|fake|edited</answer>"),
}

EXAMPLES = """\
examples:
  python converters/deepfakejudge_to_swift.py DeepfakeJudge-Dataset/dfj-meta/dfj-meta-pointwise/test \\
      --out data/dfj/pointwise_test.jsonl
  python converters/deepfakejudge_to_swift.py DeepfakeJudge-Dataset/dfj-meta/dfj-meta-pairwise/test --both-orders \\
      --out data/dfj/pairwise_test_both.jsonl
  python converters/deepfakejudge_to_swift.py --build pointwise --candidates preds.jsonl \\
      --references data/fakeclue/test.jsonl --out judge_in.jsonl
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deepfakejudge_to_swift.py", description=__doc__.split("\n\n")[0],
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("split", nargs="?", type=Path, metavar="SPLIT_DIR",
                   help="a released split directory (images/ + data.jsonl), or its data.jsonl")
    p.add_argument("--out", type=Path, required=True, metavar="JSONL", help="output JSONL (written atomically)")
    p.add_argument("--both-orders", action="store_true",
                   help="pairwise: also write every pair with responses A and B exchanged (right after it; target "
                        "flipped when known), so that eval/score.py reports position consistency")
    g = p.add_argument_group("converting a released split")
    g.add_argument("--task", choices=("auto", *TASKS), default="auto",
                   help="default auto: from each target's format (<score> → dfj-pointwise, <answer>A|B → "
                        "dfj-pairwise, <answer>real|fake|edited → dfj-detect or dfj-reason by a directory named so "
                        "in SPLIT_DIR's path; otherwise pass --task)")
    g.add_argument("--extra-keys", choices=("error", "keep", "drop"), default="error",
                   help="keys other than messages/images (and other than role/content in a message): error "
                        "(default), keep (copied verbatim to meta.extra, uninterpreted) or drop")
    g.add_argument("--skip-missing", action="store_true",
                   help="skip (and count) records whose image file is missing instead of stopping")
    g = p.add_argument_group("building judge inputs from generations")
    g.add_argument("--build", choices=("pointwise", "pairwise"), help="build judge inputs instead of converting")
    g.add_argument("--candidates", nargs="+", type=Path, metavar="PREDS",
                   help="swift infer result JSONL(s): one for pointwise, two (A then B) for pairwise")
    g.add_argument("--references", type=Path, metavar="JSONL",
                   help="the converter output the candidates were generated from (same order; meta.label real, "
                        "fake or edited; images)")
    g.add_argument("--prompt-newlines", choices=P.NEWLINES, default="lf",
                   help="lf (default): the judge template as upstream's inference reads it (open(...).read() in "
                        "text mode turns its CRLF into LF); crlf: the template's stored bytes")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    return p


# --- converting a released split -------------------------------------------------------------------------------


def locate(split: Path) -> tuple[Path, Path]:
    """(split directory, data.jsonl); a gzip-compressed data.jsonl.gz is read transparently too."""
    if split.is_dir():
        data = next((d for d in (split / "data.jsonl", split / "data.jsonl.gz") if d.is_file()), None)
        if data is None:
            raise UserError(f"{split}: no data.jsonl in this directory (a released split holds images/ and data.jsonl)")
        return split.resolve(), data
    if split.is_file():
        return split.resolve().parent, split
    raise UserError(f"{split}: split directory not found")


def task_from_path(split_dir: Path) -> str | None:
    names = {part.lower() for part in split_dir.parts}
    found = [t for t in ("dfj-detect", "dfj-reason") if t in names]
    return found[0] if len(found) == 1 else None


def check_messages(messages: Any, ctx: str, *, target_optional: bool = False) -> None:
    """Roles and contents; the last message must be the assistant's target unless `target_optional` (a record whose
    ground truth is its top-level `answer`: a question-only record, converted for inference)."""
    if not isinstance(messages, list) or not messages:
        raise UserError(f"{ctx}: 'messages' must be a non-empty list of {{role, content}} objects")
    expected = "user"
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UserError(f"{ctx}: messages[{i}] is not an object")
        role, content = message.get("role"), message.get("content")
        if not isinstance(content, str):
            raise UserError(f"{ctx}: messages[{i}].content must be a string (got {type(content).__name__})")
        if role == "system" and i == 0:
            continue
        if role != expected:
            want = "user or system" if i == 0 else expected
            raise UserError(f"{ctx}: messages[{i}].role is {role!r}; expected {want} (a system message may only "
                            f"come first, then user and assistant alternate)")
        expected = "assistant" if role == "user" else "user"
    if messages[-1].get("role") != "assistant":
        if target_optional:
            return
        raise UserError(f"{ctx}: the last message must be the assistant's target; this record has none")
    if not messages[-1]["content"].strip():
        raise UserError(f"{ctx}: the assistant target (last message) is empty")
    if P.IMAGE_TAG in "".join(m["content"] for m in messages if m["role"] == "assistant"):
        raise UserError(f"{ctx}: an assistant message contains {P.IMAGE_TAG}")


def extra_of(record: dict[str, Any], ctx: str, policy: str) -> dict[str, Any]:
    """Keys this converter cannot read: an error, or {key: value} to keep (message keys under "messages")."""
    extra = {k: v for k, v in record.items() if k not in KNOWN_KEYS}
    per_message = [{k: v for k, v in m.items() if k not in MESSAGE_KEYS} for m in record["messages"]]
    if any(per_message):
        extra["messages"] = per_message
    if extra and policy == "error":
        names = [k for k in extra if k != "messages"]
        names += [f"messages[{i}].{k}" for i, m in enumerate(per_message) for k in m]
        raise UserError(f"{ctx}: cannot read key(s) {', '.join(names)}: the released schema beyond messages/images "
                        f"is not public, so this converter does not guess their meaning; pass --extra-keys keep "
                        f"(copied verbatim to meta.extra) or --extra-keys drop")
    return extra if policy == "keep" else {}


def answer_label(record: dict[str, Any], ctx: str) -> str | None:
    """A record's top-level `answer` (real / fake / edited, any case; seen in dfj-detect records read by third-party
    code), or None without one."""
    if "answer" not in record:
        return None
    value = record["answer"]
    label = value.strip().lower() if isinstance(value, str) else None
    if label not in P.LABELS:
        raise UserError(f"{ctx}: 'answer' must be real, fake or edited (got {value!r:.60})")
    return label


def image_list(value: Any, ctx: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise UserError(f"{ctx}: 'images' must be a non-empty list of image paths (got {value!r:.80})")
    return value


def classify(target: str) -> list[str]:
    """Kinds of ground truth the target parses as: "dfj-pointwise", "dfj-pairwise", "label"."""
    kinds = []
    if P.parse_score(target).value is not None:
        kinds.append("dfj-pointwise")
    if P.parse_choice(target).value is not None:
        kinds.append("dfj-pairwise")
    if P.parse_label(target).value is not None:
        kinds.append("label")
    return kinds


class Converter:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.split_dir, self.data = locate(args.split)
        self.task: str | None = None if args.task == "auto" else args.task
        self.task_line: int | None = None
        self.counts: Counter[str] = Counter()
        self.truth: Counter[str] = Counter()

    def resolve_task(self, target: str | None, ctx: str, lineno: int) -> str:
        """The record's task: --task, else from the target's format (None: a question-only record whose ground
        truth is its `answer` label)."""
        if self.args.task != "auto":
            return self.args.task
        kinds = classify(target) if target is not None else ["label"]
        if len(kinds) != 1:
            what = "none of" if not kinds else "more than one of"
            raise UserError(f"{ctx}: cannot tell the task: the assistant target matches {what} <score>1..5</score>, "
                            f"<answer>A|B</answer>, <answer>real|fake|edited</answer>; pass --task")
        kind = kinds[0]
        if kind == "label":
            kind = task_from_path(self.split_dir)
            if kind is None:
                raise UserError(f"{ctx}: the target is a real/fake/edited answer, which dfj-detect and dfj-reason "
                                f"share, and {self.split_dir} names neither; pass --task dfj-detect or --task "
                                f"dfj-reason")
        if self.task is None:
            self.task, self.task_line = kind, lineno
        elif kind != self.task:
            raise UserError(f"{ctx}: this record is {kind} but line {self.task_line} was {self.task}; a split holds "
                            f"one task (pass --task to check every record against one)")
        return kind

    def image_paths(self, images: list[str], ctx: str) -> list[str] | None:
        out = []
        for image in images:
            path = Path(image)
            path = Path(os.path.normpath(path if path.is_absolute() else self.split_dir / path))
            if not path.is_file():
                if self.args.skip_missing:
                    return None
                raise UserError(f"{ctx}: image not found: {path} (paths are relative to the split directory "
                                f"{self.split_dir}; --skip-missing skips such records)")
            out.append(str(path))
        return out

    def convert(self, lineno: int, record: Any) -> list[dict[str, Any]]:
        ctx = where(self.data, lineno)
        if not isinstance(record, dict):
            raise UserError(f"{ctx}: expected a JSON object, got {type(record).__name__}")
        if "messages" not in record:
            raise UserError(f"{ctx}: no 'messages' (released DeepfakeJudge records are ms-swift messages + images)")
        answer = answer_label(record, ctx)
        check_messages(record["messages"], ctx, target_optional=answer is not None)
        if "images" not in record:
            raise UserError(f"{ctx}: no 'images' (every DeepfakeJudge record has its image)")
        extra = extra_of(record, ctx, self.args.extra_keys)
        images = self.image_paths(image_list(record["images"], ctx), ctx)
        if images is None:
            self.counts["skipped_missing_image"] += 1
            return []
        messages = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
        tags = sum(m["content"].count(P.IMAGE_TAG) for m in messages)
        if tags == 0:  # what ms-swift would do implicitly, made explicit: tags first in the first user message
            first = next(m for m in messages if m["role"] == "user")
            first["content"] = P.IMAGE_TAG * len(images) + first["content"]
            self.counts["image_tags_added"] += 1
        elif tags != len(images):
            raise UserError(f"{ctx}: {tags} {P.IMAGE_TAG} tag(s) for {len(images)} image(s)")
        target = messages[-1]["content"] if messages[-1]["role"] == "assistant" else None
        task = self.resolve_task(target, ctx, lineno)
        key, parse, expected = TARGETS[task]
        if answer is not None and key != "label":
            raise UserError(f"{ctx}: a top-level 'answer' is the label of a dfj-detect or dfj-reason record; this "
                            f"record is {task}")
        value = answer
        if target is not None:
            parsed = parse(target)
            if parsed.value is None:
                raise UserError(f"{ctx}: the assistant target has no {expected} ({parsed.issue}), as {task} needs")
            if answer is not None and P.is_fake(answer) != P.is_fake(parsed.value):
                raise UserError(f"{ctx}: 'answer' is {answer!r} but the assistant target says {parsed.value!r}")
            value = parsed.value  # the target's label (real / fake / edited) is the more specific one
        if answer is not None:
            self.counts["answer_key" if target is not None else "question_only_with_answer_key"] += 1
        meta: dict[str, Any] = {"task": task, key: value}
        prompt = "\n".join(m["content"] for m in messages[:-1] if m["role"] == "user")
        if task in ("dfj-pointwise", "dfj-pairwise"):
            meta["label"] = P.ground_truth_label_in(prompt)
        if task == "dfj-pairwise":
            meta.update(pair_id=str(lineno), order="AB")
        meta.update(source=str(self.data), line=lineno)
        if extra:
            meta["extra"] = extra
        self.truth[f"{key} {value}"] += 1
        rows = [{"messages": messages, "images": images, "meta": meta}]
        if self.args.both_orders:
            rows.append(self.swapped(rows[0], ctx))
        return rows

    def swapped(self, row: dict[str, Any], ctx: str) -> dict[str, Any]:
        if row["meta"]["task"] != "dfj-pairwise":
            raise UserError(f"{ctx}: --both-orders needs pairwise records; this one is {row['meta']['task']}")
        messages = [dict(m) for m in row["messages"]]
        user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        swapped = P.swap_pairwise(messages[user]["content"])
        if swapped is None:
            raise UserError(f"{ctx}: --both-orders: the user prompt does not follow "
                            f"prompts/{P.PAIRWISE_FILE}, so responses A and B cannot be exchanged")
        messages[user]["content"] = swapped
        messages[-1]["content"] = P.swap_choice(messages[-1]["content"])
        meta = {**row["meta"], "choice": "B" if row["meta"]["choice"] == "A" else "A", "order": "BA"}
        self.counts["swapped"] += 1
        return {"messages": messages, "images": row["images"], "meta": meta}

    def run(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for lineno, record in iter_jsonl(self.data):
            self.counts["records"] += 1
            rows += self.convert(lineno, record)
        if not self.counts["records"]:
            raise UserError(f"{self.data}: no records (empty file)")
        return rows


def convert_main(args: argparse.Namespace) -> int:
    for flag in ("candidates", "references"):
        if getattr(args, flag) is not None:
            raise UserError(f"--{flag} belongs to --build; converting a split takes SPLIT_DIR and --out")
    if args.prompt_newlines != "lf":
        raise UserError("--prompt-newlines belongs to --build; a released split's prompts are copied as they are")
    converter = Converter(args)
    rows = converter.run()
    if not rows:
        raise UserError(f"{converter.data}: every record was skipped ({dict(converter.counts)}); nothing written")
    write_jsonl(args.out, rows)
    if not args.quiet:
        counts = converter.counts
        extras = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()) if k != "records")
        truth = ", ".join(f"{k} {v}" for k, v in sorted(converter.truth.items()))
        print(f"wrote {args.out}: {len(rows)} {converter.task} rows from {counts['records']} records ({truth})"
              + (f"; {extras}" if extras else ""))
    return 0


# --- building judge inputs -------------------------------------------------------------------------------------


def reference_label(ref: dict[str, Any], ctx: str) -> str:
    meta = ref.get("meta")
    label = meta.get("label") if isinstance(meta, dict) else None
    if isinstance(label, str) and label.strip().lower() in P.LABELS:
        return label.strip().lower()
    raise UserError(f"{ctx}: meta.label must be real, fake or edited (the ground-truth class the judge prompt "
                    f"states); got {label!r}. References must be converter output")


def reference_images(ref: dict[str, Any], ctx: str) -> list[str]:
    images = ref.get("images")
    if isinstance(images, str):
        images = [images]
    paths = [i.get("path") if isinstance(i, dict) else i for i in images] if isinstance(images, list) else []
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise UserError(f"{ctx}: no 'images': the DeepfakeJudge judges grade a response against its image")
    return paths


def build_main(args: argparse.Namespace) -> int:
    if args.split is not None:
        raise UserError("--build takes --candidates and --references, not SPLIT_DIR")
    if args.references is None or not args.candidates:
        raise UserError(f"--build {args.build} needs --candidates and --references")
    want = 1 if args.build == "pointwise" else 2
    if len(args.candidates) != want:
        raise UserError(f"--build {args.build} takes {want} --candidates file(s) (got {len(args.candidates)})"
                        + ("; pairwise compares two models' generations: --candidates A.jsonl B.jsonl"
                           if want == 2 else ""))
    if args.both_orders and args.build != "pairwise":
        raise UserError("--both-orders applies to --build pairwise")
    if args.task != "auto" or args.extra_keys != "error" or args.skip_missing:
        raise UserError("--task, --extra-keys and --skip-missing apply to converting a split, not to --build")
    newline = args.prompt_newlines
    joined = [join(path, args.references)[0] for path in args.candidates]
    names = [str(path) for path in args.candidates]
    rows: list[dict[str, Any]] = []
    labels: Counter[str] = Counter()
    for pairs in zip(*joined, strict=True):
        ref, ref_line = pairs[0].ref, pairs[0].ref_line
        ctx = where(args.references, ref_line)
        label = reference_label(ref, ctx)
        images = reference_images(ref, ctx)
        responses = []
        for path, pair in zip(args.candidates, pairs, strict=True):
            response = pair.pred.get("response")
            if not isinstance(response, str):
                raise UserError(f"{where(path, pair.pred_line)}: 'response' must be a string (got "
                                f"{type(response).__name__})")
            responses.append(response)
        labels[label] += 1
        tags = P.IMAGE_TAG * len(images)
        common = {"label": label, "candidates": names, "references": str(args.references), "reference_line": ref_line,
                  "prompt_newlines": newline}
        if args.build == "pointwise":
            meta = {"task": "dfj-pointwise", "score": None, **common, "candidate_line": pairs[0].pred_line}
            prompt = P.pointwise_prompt(label, responses[0], newline=newline)
            rows.append({"messages": [{"role": "user", "content": tags + prompt}],
                         "images": images, "meta": meta})
            continue
        lines = [pair.pred_line for pair in pairs]
        for order, a in (("AB", 0), ("BA", 1)) if args.both_orders else (("AB", 0),):
            content = tags + P.pairwise_prompt(label, responses[a], responses[1 - a], newline=newline)
            meta = {"task": "dfj-pairwise", "choice": None, **common, "pair_id": str(ref_line), "order": order,
                    "a": a, "candidate_lines": lines}
            rows.append({"messages": [{"role": "user", "content": content}], "images": images, "meta": meta})
    if not rows:
        raise UserError(f"{args.references}: no references (empty file)")
    write_jsonl(args.out, rows)
    if not args.quiet:
        print(f"wrote {args.out}: {len(rows)} {args.build} judge inputs for {sum(labels.values())} references ("
              + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())) + ")")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.build:
        return build_main(args)
    if args.split is None:
        raise UserError("give a SPLIT_DIR to convert, or --build pointwise|pairwise with --candidates and --references")
    return convert_main(args)


if __name__ == "__main__":
    run_cli(main)
