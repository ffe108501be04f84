"""A trained DeeptraceReward detector as a reward model for video generators: per-video P(REAL) and the traces found.

    python eval/reward.py VIDEOS_DIR --ckpt CKPT --out rewards/            # runs swift infer (recipes/infer.sh)
    python eval/reward.py VIDEOS_DIR --predictions RESULT.jsonl --out rewards/   # an earlier swift infer result
    python eval/reward.py VIDEOS_DIR --base-url URL --model NAME --out rewards/  # an OpenAI-compatible endpoint

VIDEOS_DIR holds the generated clips (*.mp4), one folder per generator or prompt set (`kling/`, `sora/set1/`, ...):
the first `--group-depth` folders below VIDEOS_DIR name a video's group. Each video is asked the detector's question
(prompts/deeptrace.py, `--variant`) with greedy decoding and the token log-probabilities of the answer
(`swift infer --logprobs true --top_logprobs K`, or the same request to an endpoint serving the detector, e.g.
`swift deploy`: each clip sent as a base64 video, `logprobs` and `top_logprobs` asked for). Written to --out (a new
or empty folder, or one this command wrote):

    rewards.jsonl / rewards.csv   one row per video: p_real (the reward), the verdict, the trace found (box in frame
                                  ratios and source pixels, onset and end in seconds, the trace categories its
                                  explanation names), the answer, and how p_real was read (verdict_status)
    summary.jsonl / summary.csv   one row per group and one for all videos, ranked by mean p_real (most realistic
                                  first): videos, p_real mean/std/min/max over the videos that have one, the share
                                  judged FAKE, the mean onset, trace categories named, and every count of videos
                                  without a p_real by reason
    inputs.jsonl, predictions.jsonl   what was asked and swift infer's result (kept for auditing and re-runs)

P(REAL) is read at the verdict token: the first generated token of the answer's REAL/FAKE word (after any
`<think>` block). Its top-K alternatives (plus the chosen token) are split into tokens that begin "REAL", tokens that
begin "FAKE" and the rest, and the two verdicts are normalised against each other:
p_real = P_R / (P_R + P_F), where P_R and P_F sum the listed probabilities of the tokens that begin each word (a
token such as "RE" counts for REAL: the first token decides the word). The K listed tokens leave a probability
`rest` = 1 - their sum unaccounted for, which could belong to either word, so p_real is only known to lie in
[P_R / (P_R + P_F + rest), (P_R + rest) / (P_R + P_F + rest)]. Both bounds are written (p_real_low, p_real_high);
p_real itself is written only when they are within --tolerance of each other (verdict_status "ok"). Otherwise it is
null and counted, never guessed: "undetermined" (one or both words missing from a top-K too short to bound p_real),
"neither in top-k" (no listed token begins either word), "no verdict token" (the answer has no REAL/FAKE word at a
token boundary, or its first one is not the verdict the codec reads), "unparseable" (no verdict) or "no logprobs".
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import re
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.argtypes import fraction, non_negative_int, positive_float, positive_int  # noqa: E402
from common.cli import Parser  # noqa: E402
from common.errors import UserError, run_cli, where  # noqa: E402
from common.join import media_paths  # noqa: E402
from common.jsonl import dumps, iter_jsonl, write_jsonl  # noqa: E402
from common.media import VideoInfo, probe_video  # noqa: E402
from common.outputs import check_owned_dir, write_owned_dir  # noqa: E402
from prompts import deeptrace as D  # noqa: E402
from prompts.deeptrace_categories import PAPER_CATEGORIES, CategoryMap, load_category_map  # noqa: E402
from prompts.reasoning import THINK_CLOSE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
INFER = ROOT / "recipes" / "infer.sh"
MANIFEST = ".reward_manifest.json"
FAKE, REAL = D.FAKE, D.REAL
VERDICT_WORDS = {FAKE: D.VOCABULARY.markers[0].encode(), REAL: D.VOCABULARY.markers[1].encode()}  # the answer's markers
STATUSES = ("ok", "undetermined", "neither in top-k", "no verdict token", "unparseable", "no logprobs")
DEFAULT_TOP_LOGPROBS = 20
DEFAULT_TOLERANCE = 0.01


# --- P(REAL) at the verdict token ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictProbability:
    status: str  # one of STATUSES
    p_real: float | None = None  # P_R / (P_R + P_F), when the bounds agree within the tolerance
    low: float | None = None  # bounds of P(REAL) given the listed tokens
    high: float | None = None
    mass_real: float | None = None  # P_R: summed probability of the listed tokens that begin REAL
    mass_fake: float | None = None  # P_F
    rest: float | None = None  # 1 - the summed probability of every listed token
    token_index: int | None = None  # the verdict token's position in the generated tokens


def _token_bytes(entry: Any) -> bytes:
    raw = entry.get("bytes") if isinstance(entry, dict) else None
    if isinstance(raw, list) and all(isinstance(b, int) and 0 <= b < 256 for b in raw):
        return bytes(raw)
    token = entry.get("token") if isinstance(entry, dict) else None
    return token.encode("utf-8") if isinstance(token, str) else b""


def _logprob(entry: Any) -> float | None:
    value = entry.get("logprob") if isinstance(entry, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0 and not math.isnan(value):
        return float(value)
    return None


def begins(token: bytes, word: bytes) -> bool:
    """The token starts the word: after leading whitespace, a non-empty prefix of it ("RE", "REAL"), or the whole
    word followed by a non-letter ("REAL.")."""
    text = token.lstrip()
    if not text:
        return False
    if word.startswith(text):
        return True
    return text.startswith(word) and not text[len(word):len(word) + 1].isalpha()


_WORD = re.compile(rb"(?<![A-Za-z])(" + b"|".join(map(re.escape, VERDICT_WORDS.values())) + rb")(?![A-Za-z])")
_THINK_CLOSE = re.compile(THINK_CLOSE.encode(), re.I)


def verdict_probability(logprobs: Any, label: str | None, tolerance: float = DEFAULT_TOLERANCE) -> VerdictProbability:
    """P(REAL) at the verdict token of one answer (module docstring); `label` is the verdict the codec read."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content:
        return VerdictProbability("no logprobs")
    if label not in VERDICT_WORDS:
        return VerdictProbability("unparseable")
    pieces = [_token_bytes(entry) for entry in content]
    starts, pos = [], 0
    for piece in pieces:
        starts.append(pos)
        pos += len(piece)
    text = b"".join(pieces)
    closes = list(_THINK_CLOSE.finditer(text))
    found = _WORD.search(text, closes[-1].end() if closes else 0)
    if found is None or found.group(1) != VERDICT_WORDS[label]:
        return VerdictProbability("no verdict token")
    k = next(i for i, (s, piece) in enumerate(zip(starts, pieces, strict=True)) if s <= found.start() < s + len(piece))
    if text[starts[k]:found.start()].strip():  # the token holds more than whitespace before the word (".FAKE")
        return VerdictProbability("no verdict token", token_index=k)
    listed: dict[bytes, float] = {}
    for alt in content[k].get("top_logprobs") or []:
        lp = _logprob(alt)
        if lp is not None:
            listed[_token_bytes(alt)] = lp
    chosen = _logprob(content[k])
    if chosen is not None:
        listed.setdefault(pieces[k], chosen)
    probs = {token: math.exp(lp) for token, lp in listed.items()}
    real = math.fsum(p for token, p in probs.items() if begins(token, VERDICT_WORDS[REAL]))
    fake = math.fsum(p for token, p in probs.items() if begins(token, VERDICT_WORDS[FAKE]))
    rest = max(0.0, 1.0 - math.fsum(probs.values()))
    total = real + fake + rest
    if real + fake == 0.0:
        bounds = (0.0, 1.0) if rest > 0 else (None, None)
        return VerdictProbability("neither in top-k", None, *bounds, real, fake, rest, k)
    low, high = real / total, (real + rest) / total
    value = real / (real + fake)
    if high - low > tolerance:
        return VerdictProbability("undetermined", None, low, high, real, fake, rest, k)
    return VerdictProbability("ok", value, low, high, real, fake, rest, k)


# --- the trace found ---------------------------------------------------------------------------------------------


def categories_named(text: str | None, categories: CategoryMap) -> list[str]:
    """The trace categories an explanation names: the category map's rules (prompts/deeptrace/categories.yaml, the
    one the converters use for annotation tags) searched in the explanation, in the map's order."""
    if not text:
        return []
    found, _ = categories.map([text])
    return [name for name in found if name in categories.names]


def _round(value: float | None, places: int = 6) -> float | None:
    return None if value is None else round(value, places)


def trace_of(parsed: D.Answer, info: VideoInfo | None, box_format: str,
             categories: CategoryMap) -> dict[str, Any] | None:
    """The trace a FAKE answer states: box (frame ratios and source pixels), onset, end, explanation, categories."""
    if parsed.label != FAKE:
        return None
    box = box_px = None
    fmt = D.BOX_FORMATS[box_format]
    if parsed.box is not None and (fmt.scale or (info is not None and info.width and info.height)):
        box = D.to_ratio(parsed.box, fmt, info.width if info else None, info.height if info else None)
        if box is not None and info is not None and info.width and info.height:
            box_px = [box[0] * info.width, box[1] * info.height, box[2] * info.width, box[3] * info.height]
    return {"box": [_round(v) for v in box] if box is not None else None,
            "box_pixels": [_round(v, 2) for v in box_px] if box_px is not None else None,
            "onset": parsed.start, "end": parsed.end, "explanation": parsed.explanation,
            "categories": categories_named(parsed.explanation, categories)}


# --- per video and per group -------------------------------------------------------------------------------------


def reward_row(video: str, path: Path, group: str, info: VideoInfo | None, prediction: dict[str, Any],
               box_format: str, tolerance: float, categories: CategoryMap) -> dict[str, Any]:
    response = prediction.get("response")
    parsed = D.parse(response)
    vp = verdict_probability(prediction.get("logprobs"), parsed.label, tolerance)
    trace = trace_of(parsed, info, box_format, categories)
    return {
        "video": video, "group": group, "path": str(path),
        "p_real": _round(vp.p_real), "verdict": parsed.label, "verdict_status": vp.status,
        "p_real_low": _round(vp.low), "p_real_high": _round(vp.high), "mass_real": _round(vp.mass_real),
        "mass_fake": _round(vp.mass_fake), "rest": _round(vp.rest), "verdict_token": vp.token_index,
        "traces": [trace] if trace else [],
        "width": info.width if info else None, "height": info.height if info else None,
        "duration": _round(info.duration, 4) if info else None,
        "response": response if isinstance(response, str) else None, "parse_issues": list(parsed.issues),
    }


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p_real_mean": None, "p_real_std": None, "p_real_min": None, "p_real_max": None}
    return {"p_real_mean": _round(statistics.fmean(values)),
            "p_real_std": _round(statistics.stdev(values)) if len(values) > 1 else 0.0,
            "p_real_min": _round(min(values)), "p_real_max": _round(max(values))}


def _category_order(item: tuple[str, int]) -> tuple[int, str]:
    name = item[0]
    return (PAPER_CATEGORIES.index(name) if name in PAPER_CATEGORIES else len(PAPER_CATEGORIES), name)


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group, ranked by mean p_real (groups without any p_real last), then one for all videos."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)

    def summary(name: str, members: list[dict[str, Any]]) -> dict[str, Any]:
        values = [r["p_real"] for r in members if r["p_real"] is not None]
        traces = [t for r in members for t in r["traces"]]
        onsets = [t["onset"] for t in traces if t["onset"] is not None]
        categories = Counter(c for t in traces for c in t["categories"])
        statuses = Counter(r["verdict_status"] for r in members)
        return {"group": name, "videos": len(members), "with_p_real": len(values), **_stats(values),
                "judged_fake": sum(r["verdict"] == FAKE for r in members),
                "judged_real": sum(r["verdict"] == REAL for r in members),
                "fake_rate": _round(sum(r["verdict"] == FAKE for r in members) / len(members)),
                "mean_onset": _round(statistics.fmean(onsets), 3) if onsets else None,
                "categories": dict(sorted(categories.items(), key=_category_order)),
                "without_p_real": {s: statuses[s] for s in STATUSES[1:] if statuses[s]}}

    ranked = sorted((summary(name, members) for name, members in groups.items()),
                    key=lambda s: (s["p_real_mean"] is None, -(s["p_real_mean"] or 0.0), s["group"]))
    for rank, entry in enumerate(ranked, 1):
        entry["rank"] = rank if entry["p_real_mean"] is not None else None
    total = summary("(all)", list(rows))
    total["rank"] = None
    return [*ranked, total]


# --- CSV -----------------------------------------------------------------------------------------------------------

REWARD_COLUMNS = ("video", "group", "p_real", "verdict", "verdict_status", "p_real_low", "p_real_high", "box",
                  "box_pixels", "onset", "end", "categories", "explanation", "width", "height", "duration", "response")
SUMMARY_COLUMNS = ("rank", "group", "videos", "with_p_real", "p_real_mean", "p_real_std", "p_real_min", "p_real_max",
                   "judged_fake", "judged_real", "fake_rate", "mean_onset", "categories", "without_p_real")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return " ".join(map(str, value)) if all(isinstance(v, (int, float)) for v in value) else "; ".join(
            map(str, value))
    return value


def flat_reward(row: dict[str, Any]) -> dict[str, Any]:
    """A rewards.jsonl row with its trace's fields at the top (the CSV's columns)."""
    trace = row["traces"][0] if row["traces"] else {}
    return {**row, **{k: trace.get(k) for k in ("box", "box_pixels", "onset", "end", "categories", "explanation")}}


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


# --- inputs, inference, join -------------------------------------------------------------------------------------


def find_videos(root: Path, extensions: Sequence[str]) -> list[Path]:
    if not root.is_dir():
        raise UserError(f"{root}: not a directory (give the folder of generated videos)")
    wanted = {"." + e.lower().lstrip(".") for e in extensions}
    videos = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted)
    if not videos:
        raise UserError(f"{root}: no {'/'.join(sorted(wanted))} files found (searched all subfolders)")
    return videos


def group_of(rel: Path, depth: int) -> str:
    parts = rel.parent.parts[:depth]
    return "/".join(parts) if parts else "."


def inputs_for(videos: Sequence[Path], variant: str, box_format: str) -> list[dict[str, Any]]:
    """swift infer rows: the detector's question and the video (absolute path); no reference answer."""
    text = D.question(variant, box_format)
    return [{"messages": [{"role": "user", "content": text}], "videos": [str(v.resolve())]} for v in videos]


def run_infer(ckpt: str, inputs: Path, result: Path, top_logprobs: int, extra: Sequence[str]) -> None:
    """recipes/infer.sh (the checkpoint's training frames, greedy decoding) with the answer's token logprobs."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update({"CKPT": ckpt, "INPUT": str(inputs), "RESULT_PATH": str(result)})
    argv = ["bash", str(INFER), "--logprobs", "true", "--top_logprobs", str(top_logprobs), "--temperature", "0",
            *extra]
    print(f"reward.py: running swift infer on {inputs} (recipes/infer.sh, CKPT={ckpt})", file=sys.stderr, flush=True)
    proc = subprocess.run(argv, env=env, stdout=sys.stderr)
    if proc.returncode != 0:
        raise UserError(f"swift infer failed (recipes/infer.sh exited {proc.returncode}; its output is above)")


def read_predictions(path: Path, videos: Sequence[Path]) -> dict[Path, dict[str, Any]]:
    """Predictions keyed by video (each result row keeps its `videos`); every video needs exactly one."""
    wanted = {v.resolve(): v for v in videos}
    found: dict[Path, dict[str, Any]] = {}
    for lineno, row in iter_jsonl(path):
        if not isinstance(row, dict) or "response" not in row:
            raise UserError(f"{where(path, lineno)}: not a swift infer result (no 'response')")
        paths = media_paths(row, "videos") or []
        if len(paths) != 1:
            raise UserError(f"{where(path, lineno)}: expected one video per result, got {len(paths)}")
        key = Path(paths[0]).resolve()
        if key not in wanted:
            continue  # a result for a video outside VIDEOS_DIR
        if key in found:
            raise UserError(f"{where(path, lineno)}: a second result for {paths[0]}")
        found[key] = row
    missing = [str(v) for k, v in wanted.items() if k not in found]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise UserError(f"{path}: no result for {len(missing)} of {len(wanted)} videos ({shown})")
    if not any(isinstance(r.get("logprobs"), dict) for r in found.values()):
        raise UserError(f"{path}: no token logprobs in the results; run swift infer with --logprobs true "
                        f"--top_logprobs {DEFAULT_TOP_LOGPROBS} (this command does, with --ckpt)")
    return {wanted[k]: row for k, row in found.items()}


def query_endpoint(videos: Sequence[Path], variant: str, args: argparse.Namespace, cache: Path) -> dict[Path, dict]:
    """The detector's answers with token logprobs from an OpenAI-compatible endpoint (eval/judge.py's client: bounded
    concurrency, retries, a reply cache keyed by the clip's content, so a re-run asks only what is missing)."""
    import base64
    import json
    import mimetypes

    from eval.judge import Judge, JudgeError, JudgeRequest
    from eval.report_media import file_sha256

    text = D.question(variant, args.bbox_format)
    before, _, after = text.partition("<video>")  # the video takes the tag's place, as in training

    def messages(video: Path) -> list[dict[str, Any]]:
        mime = mimetypes.guess_type(video.name)[0] or "video/mp4"
        url = f"data:{mime};base64,{base64.b64encode(video.read_bytes()).decode('ascii')}"
        parts = [{"type": "text", "text": before}] if before else []
        parts += [{"type": "video_url", "video_url": {"url": url}}, {"type": "text", "text": after}]
        return [{"role": "user", "content": parts}]

    client = Judge(args.model, base_url=args.base_url, cache_path=cache, concurrency=args.concurrency,
                   max_retries=args.retries, timeout=args.timeout, temperature=0.0, max_tokens=args.max_new_tokens,
                   name="reward model endpoint", model_flag="--model", cache_flag="--cache",
                   top_logprobs=args.top_logprobs)
    requests = [JudgeRequest(lambda v=v: messages(v), info={"video": str(v)},
                             key=json.dumps({"video_sha256": file_sha256(v), "question": text}, sort_keys=True))
                for v in videos]
    try:
        results = client.run(requests, lambda reply: reply, desc="reward model")
    except JudgeError as exc:
        raise UserError(f"endpoint: {exc}") from None
    failed = [(v, r) for v, r in zip(videos, results, strict=True) if r.status != "ok"]
    if failed:
        raise UserError(f"endpoint: {len(failed)} of {len(videos)} requests failed (first: {failed[0][0]}: "
                        f"{failed[0][1].error}); answers received so far are cached in {cache} - re-run the same "
                        f"command to resume")
    out = {}
    for video, result in zip(videos, results, strict=True):
        reply = json.loads(result.value)
        out[video] = {"response": reply["content"], "labels": None, "videos": [str(video.resolve())],
                      "messages": [{"role": "user", "content": text}, {"role": "assistant",
                                                                         "content": reply["content"]}],
                      "logprobs": reply["logprobs"], "endpoint": {"model": args.model, "calls": result.calls}}
    return out


# --- CLI -----------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="reward.py", description=__doc__.split("\n\n")[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog="Extra `swift infer` flags go after `--` (e.g. -- --infer_backend vllm). See eval/README.md "
                           "(Reward model for video generators).")
    parser.add_argument("videos", type=Path, metavar="VIDEOS_DIR", help="folder of generated videos (searched "
                                                                         "recursively)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", help="the trained detector: a checkpoint or training output dir (as recipes/"
                                       "infer.sh's CKPT); swift infer runs on every video")
    source.add_argument("--predictions", type=Path, metavar="JSONL",
                        help="an earlier swift infer result (with --logprobs true) for these videos")
    source.add_argument("--base-url", metavar="URL", help="an OpenAI-compatible endpoint serving the detector (e.g. "
                                                          "swift deploy); key only from $OPENAI_API_KEY")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder: new, empty, or written by this command before")
    parser.add_argument("--group-depth", type=int, default=1, metavar="N",
                        help="a video's group = its first N folders below VIDEOS_DIR (default 1: the generator; 2 "
                             "for generator/prompt-set; 0: one group)")
    parser.add_argument("--variant", default="full", choices=D.VARIANTS,
                        help="the question the detector was trained on (default full)")
    parser.add_argument("--bbox-format", default="pixels", choices=D.BOX_FORMAT_NAMES,
                        help="box convention of the detector's answers (the one it was trained with; default "
                             "pixels): " + D.box_formats_help())
    parser.add_argument("--top-logprobs", type=positive_int, default=DEFAULT_TOP_LOGPROBS, metavar="K",
                        help=f"alternatives logged per token (default {DEFAULT_TOP_LOGPROBS})")
    parser.add_argument("--tolerance", type=fraction, default=DEFAULT_TOLERANCE, metavar="T",
                        help=f"largest width of P(REAL)'s bounds for which p_real is written (default "
                             f"{DEFAULT_TOLERANCE})")
    parser.add_argument("--category-map", metavar="YAML", help="trace categories and the rules that find them in an "
                        "explanation (default: the paper's nine, prompts/deeptrace/categories.yaml)")
    parser.add_argument("--ext", default="mp4", metavar="EXT[,EXT]", help="video file extensions (default mp4)")
    endpoint = parser.add_argument_group("endpoint (--base-url)")
    endpoint.add_argument("--model", help="the model name the endpoint serves (required with --base-url)")
    endpoint.add_argument("--cache", type=Path, metavar="JSONL",
                          help="reply cache (default: OUT.reward_cache.jsonl beside --out)")
    endpoint.add_argument("--concurrency", type=positive_int, default=8, metavar="N", help="parallel requests (8)")
    endpoint.add_argument("--retries", type=non_negative_int, default=6, metavar="N",
                          help="retries per request on 429/5xx/timeouts (default 6)")
    endpoint.add_argument("--timeout", type=positive_float, default=300.0, metavar="S",
                          help="seconds per request (default 300)")
    endpoint.add_argument("--max-new-tokens", type=positive_int, default=512, metavar="N",
                          help="answer length (default 512, as recipes/configs/infer.yaml)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if args.group_depth < 0:
        raise UserError("--group-depth must be 0 or more")
    if extra and not args.ckpt:
        raise UserError("swift infer flags after `--` need --ckpt (nothing runs swift infer otherwise)")
    if args.base_url and not args.model:
        raise UserError("--base-url needs --model (the model name the endpoint serves)")
    cache = args.cache or args.out.parent / f"{args.out.name}.reward_cache.jsonl"
    root = args.videos
    videos = find_videos(root, [e for e in args.ext.split(",") if e.strip()])
    check_owned_dir(args.out, MANIFEST, "--out", "reward.py")
    inputs = inputs_for(videos, args.variant, args.bbox_format)
    categories = load_category_map(args.category_map)

    done: dict[str, Any] = {}

    def build(tmp: Path) -> None:
        write_jsonl(tmp / "inputs.jsonl", inputs)
        if args.ckpt:
            run_infer(args.ckpt, tmp / "inputs.jsonl", tmp / "predictions.jsonl", args.top_logprobs, extra)
            predictions = read_predictions(tmp / "predictions.jsonl", videos)
        else:
            if args.base_url:
                predictions = query_endpoint(videos, args.variant, args, cache)
            else:
                predictions = read_predictions(args.predictions, videos)
            write_jsonl(tmp / "predictions.jsonl", (predictions[v] for v in videos))
        rows = []
        for video in tqdm(videos, desc="reading answers", unit="video", file=sys.stderr, disable=None):
            rel = video.relative_to(root)
            try:
                info = probe_video(video)
            except UserError:
                info = None  # an unreadable file: no box in ratios, no duration; the rest still counts
            rows.append(reward_row(rel.as_posix(), video.resolve(), group_of(rel, args.group_depth), info,
                                   predictions[video], args.bbox_format, args.tolerance, categories))
        summary = summarise(rows)
        write_jsonl(tmp / "rewards.jsonl", rows)
        write_jsonl(tmp / "summary.jsonl", summary)
        (tmp / "rewards.csv").write_text(to_csv(map(flat_reward, rows), REWARD_COLUMNS), encoding="utf-8")
        (tmp / "summary.csv").write_text(to_csv(summary, SUMMARY_COLUMNS), encoding="utf-8")
        done["summary"] = summary

    write_owned_dir(args.out, build, manifest=MANIFEST, flag="--out", owner="reward.py")
    summary = done["summary"]
    total = summary[-1]
    print(f"reward.py: {total['videos']} videos, {total['with_p_real']} with p_real "
          f"(mean {total['p_real_mean']}); without: {dumps(total['without_p_real'])}; wrote {args.out}/"
          f"{{rewards,summary}}.{{jsonl,csv}}")
    for entry in summary[:-1]:
        print(f"  {entry['rank'] or '-'}. {entry['group']}: p_real {entry['p_real_mean']} over {entry['with_p_real']} "
              f"of {entry['videos']} videos; judged fake {entry['judged_fake']}")
    return 0


if __name__ == "__main__":
    run_cli(main)
