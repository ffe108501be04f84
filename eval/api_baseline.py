"""Zero-shot baselines of API models (GPT, Gemini, any OpenAI-compatible server) in `swift infer`'s result layout.

    python eval/api_baseline.py --model gpt-4.1 --references data/deeptrace/test.jsonl --out preds.jsonl \
        [--base-url URL] [--fps 2] [--max-frames 32]
    python eval/score.py --predictions preds.jsonl --references data/deeptrace/test.jsonl

Videos are sampled at --fps (at most --max-frames, spread uniformly), each frame sent as an image (a base64 data URL,
at the video's own resolution, preceded by `Time 1.5s:`) followed by the paper's zero-shot prompt (App. E,
prompts/deeptrace/zero_shot.txt, byte-exact). Image samples (FakeClue, DeepfakeJudge) are sent with their own question,
each `<image>` tag replaced by the image. Calls go through eval/judge.py's client: bounded concurrency, retries
honouring Retry-After, an on-disk cache (a re-run makes no repeated call), a request budget, a progress bar; the key
only from $OPENAI_API_KEY. The result file has one line per reference, in order, with swift infer's keys.
"""

from __future__ import annotations

import argparse
import base64
import json
import mimetypes
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.argtypes import non_negative_int, optional_float, positive_float, positive_int  # noqa: E402
from common.errors import UserError, run_cli, where  # noqa: E402
from common.join import assistant_text, media_paths, read_records  # noqa: E402
from common.jsonl import write_jsonl  # noqa: E402
from common.outputs import check_output_file  # noqa: E402
from eval.judge import Judge, JudgeError, JudgeRequest  # noqa: E402
from eval.report_media import (  # noqa: E402
    encode_image,
    file_sha256,
    media_roots,
    probe_video,
    read_frames,
    resolve_media,
    sample_indices,
)
from prompts.deeptrace import BOX_FORMATS, ZERO_SHOT, box_format  # noqa: E402

MEDIA_TAG = re.compile(r"<(image|video)>")
SEND_AS_IS = {"image/jpeg", "image/png", "image/webp", "image/gif"}  # image files sent unchanged (no re-encoding)


# --- what is sent --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Video:
    path: Path
    sha256: str
    indices: tuple[int, ...]
    times: tuple[float, ...]


@dataclass(frozen=True)
class Picture:
    path: Path
    sha256: str


@dataclass
class Plan:
    """One request before its media are encoded: messages whose content is a list of str / Video / Picture."""

    messages: list[dict[str, Any]]  # {"role", "parts": [...]} or {"role", "content": str}
    swift_messages: list[dict[str, Any]]  # the prompt as swift infer would record it (`<video>`/`<image>` tags)
    prompt: str  # "zero-shot (App. E)" | "reference" | a file
    frames: int
    frame_times: list[list[float]]


class Settings:
    def __init__(self, args: argparse.Namespace):
        self.timestamps = not args.no_timestamps
        self.fmt = args.image_format
        self.quality = args.jpeg_quality
        self.detail = args.detail

    def describe(self) -> dict[str, Any]:
        return {"timestamps": self.timestamps, "format": self.fmt, "quality": self.quality, "detail": self.detail}


def _image_part(data: bytes, mime: str, settings: Settings) -> dict[str, Any]:
    url = {"url": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"}
    if settings.detail:
        url["detail"] = settings.detail
    return {"type": "image_url", "image_url": url}


def materialise(plan: Plan, settings: Settings) -> list[dict[str, Any]]:
    """The chat messages of a plan: frames decoded and encoded now (called by the client just before the call)."""
    out = []
    for message in plan.messages:
        if "content" in message:
            out.append({"role": message["role"], "content": message["content"]})
            continue
        parts: list[dict[str, Any]] = []
        for part in message["parts"]:
            if isinstance(part, str):
                parts.append({"type": "text", "text": part})
            elif isinstance(part, Video):
                frames = read_frames(part.path, part.indices)
                for t, frame in zip(part.times, frames, strict=True):
                    if settings.timestamps:
                        parts.append({"type": "text", "text": f"Time {t:.1f}s:"})
                    mime = "image/png" if settings.fmt == "png" else "image/jpeg"
                    parts.append(_image_part(encode_image(frame, settings.fmt, settings.quality), mime, settings))
            else:
                mime = mimetypes.guess_type(part.path.name)[0] or ""
                if mime in SEND_AS_IS:
                    data = part.path.read_bytes()
                else:
                    from PIL import Image

                    with Image.open(part.path) as image:
                        data, mime = encode_image(image.convert("RGB"), "png"), "image/png"
                parts.append(_image_part(data, mime, settings))
        out.append({"role": message["role"], "content": parts})
    return out


def describe(plan: Plan) -> list[dict[str, Any]]:
    """A compact stand-in for the messages that determines them completely (the cache key): texts, and for media
    their content hash and the frames taken (never the file name, so a moved file still hits the cache)."""
    out = []
    for message in plan.messages:
        if "content" in message:
            out.append(message)
            continue
        parts = []
        for part in message["parts"]:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Video):
                parts.append({"video": part.sha256, "frames": list(part.indices), "times": list(part.times)})
            else:
                parts.append({"image": part.sha256})
        out.append({"role": message["role"], "parts": parts})
    return out


# --- references → plans --------------------------------------------------------------------------------------------


class MediaIndex:
    """Resolves, probes and hashes each media file once."""

    def __init__(self, roots: list[Path], fps: float, max_frames: int):
        self.roots, self.fps, self.max_frames = roots, fps, max_frames
        self.missing: list[str] = []
        self._videos: dict[str, Video | None] = {}
        self._pictures: dict[str, Picture | None] = {}

    def video(self, name: str) -> Video | None:
        if name not in self._videos:
            path = resolve_media(name, self.roots)
            if path is None:
                self.missing.append(name)
                self._videos[name] = None
            else:
                info = probe_video(path)
                indices = sample_indices(info, self.fps, self.max_frames)
                times = tuple(round(i / info.fps, 3) if info.fps > 0 else 0.0 for i in indices)
                self._videos[name] = Video(path, file_sha256(path), tuple(indices), times)
        return self._videos[name]

    def picture(self, name: str) -> Picture | None:
        if name not in self._pictures:
            path = resolve_media(name, self.roots)
            if path is None:
                self.missing.append(name)
            self._pictures[name] = Picture(path, file_sha256(path)) if path else None
        return self._pictures[name]


def plan_for(record: dict[str, Any], ctx: str, media: MediaIndex, prompt_mode: str, prompt_text: str | None) -> Plan:
    videos = media_paths(record, "videos") or []
    images = media_paths(record, "images") or []
    items: list[Video | Picture | None] = [media.video(v) for v in videos] + [media.picture(i) for i in images]
    tags = ["<video>"] * len(videos) + ["<image>"] * len(images)
    frames = sum(len(m.indices) if isinstance(m, Video) else 1 for m in items if m is not None)
    frame_times = [list(m.times) for m in items if isinstance(m, Video)]
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    mode = prompt_mode
    if mode == "auto":
        mode = "zero-shot" if (meta.get("task") == "deeptrace" or (videos and not meta.get("task"))) else "reference"
    if mode in ("zero-shot", "file"):
        text = ZERO_SHOT if mode == "zero-shot" else prompt_text
        return Plan([{"role": "user", "parts": [*items, text]}], [{"role": "user", "content": "".join(tags) + text}],
                    "zero-shot (App. E)" if mode == "zero-shot" else "file", frames, frame_times)
    # the reference's own prompt: every message before its last assistant answer, media tags replaced in order
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise UserError(f"{ctx}: no 'messages' to take the question from (use --prompt zero-shot or a file)")
    last = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"),
               default=len(messages))
    prompt_messages = messages[:last]
    if not prompt_messages:
        raise UserError(f"{ctx}: no question before the reference answer")
    queue = list(zip(tags, items, strict=True))
    out = []
    for message in prompt_messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise UserError(f"{ctx}: message content must be a string")
        if message.get("role") != "user":
            out.append({"role": message["role"], "content": content})
            continue
        parts: list[Any] = []
        pos = 0
        for m in MEDIA_TAG.finditer(content):
            if content[pos:m.start()]:
                parts.append(content[pos:m.start()])
            wanted = f"<{m.group(1)}>"
            k = next((j for j, (tag, _) in enumerate(queue) if tag == wanted), None)
            if k is None:
                raise UserError(f"{ctx}: more {wanted} tags than {m.group(1)}s in the sample")
            parts.append(queue.pop(k)[1])
            pos = m.end()
        if content[pos:]:
            parts.append(content[pos:])
        out.append({"role": "user", "parts": parts})
    if queue:  # media without a tag go first, as ms-swift does
        first = next(m for m in out if "parts" in m)
        first["parts"][:0] = [item for _, item in queue]
    return Plan(out, [dict(m) for m in prompt_messages], "reference", frames, frame_times)


# --- CLI -----------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="api_baseline.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="See eval/README.md (Zero-shot API baselines).")
    parser.add_argument("--model", required=True, help="model name at the endpoint (e.g. gpt-4.1, gemini-2.5-pro)")
    parser.add_argument("--base-url", metavar="URL", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, "
                                                          "else api.openai.com); key only from $OPENAI_API_KEY")
    parser.add_argument("--references", required=True, metavar="JSONL", help="converter output (e.g. test.jsonl)")
    parser.add_argument("--out", required=True, metavar="JSONL", help="result file (swift infer layout), atomic")
    parser.add_argument("--fps", type=positive_float, default=2.0, help="frames per second sampled (default 2, "
                                                                          "the paper's App. E setting)")
    parser.add_argument("--max-frames", type=positive_int, default=32, metavar="N",
                        help="at most N frames per video, spread uniformly (default 32)")
    parser.add_argument("--prompt", default="auto", metavar="auto|zero-shot|reference|FILE",
                        help="zero-shot: the App. E prompt; reference: the reference's own question; FILE: that "
                             "file's text, byte-exact; auto (default): zero-shot for deeptrace, else reference")
    parser.add_argument("--no-timestamps", action="store_true", help="no `Time 1.5s:` text before each frame")
    parser.add_argument("--image-format", choices=("jpeg", "png"), default="jpeg", help="frame encoding (jpeg)")
    parser.add_argument("--jpeg-quality", type=positive_int, default=90, metavar="Q", help="default 90")
    parser.add_argument("--detail", choices=("auto", "low", "high"), help="OpenAI image detail (default: not sent)")
    parser.add_argument("--temperature", type=optional_float, default=0.0,
                        help="default 0; 'none' sends none (reasoning models such as gpt-5 accept only their default)")
    parser.add_argument("--max-tokens", type=positive_int, default=None, metavar="N", help="default: not sent")
    parser.add_argument("--media-root", action="append", default=[], metavar="DIR",
                        help="where relative media paths are found (repeatable; also $ROOT_IMAGE_DIR and the "
                             "references' directory)")
    parser.add_argument("--cache", metavar="JSONL", help="reply cache (default: <out>.api.jsonl beside --out)")
    parser.add_argument("--concurrency", type=positive_int, default=8, metavar="N", help="parallel requests (8)")
    parser.add_argument("--retries", type=non_negative_int, default=6, metavar="N",
                        help="retries per call on 429/5xx/timeouts/dropped connections (default 6)")
    parser.add_argument("--timeout", type=positive_float, default=180.0, metavar="S",
                        help="seconds per request (default 180)")
    parser.add_argument("--budget", type=non_negative_int, default=None, metavar="N",
                        help="at most N HTTP requests in this run, retries included (default: unlimited)")
    parser.add_argument("--keep-failed", action="store_true",
                        help="write failed items with an empty response (scored as unparseable) instead of stopping")
    return parser


def cache_path(args: argparse.Namespace) -> str:
    if args.cache:
        return args.cache
    out = Path(args.out)
    return str(out.with_suffix("")) + ".api.jsonl" if out.suffix == ".jsonl" else str(out) + ".api.jsonl"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prompt_mode, prompt_text = args.prompt, None
    if prompt_mode not in ("auto", "zero-shot", "reference"):
        path = Path(prompt_mode)
        if not path.is_file():
            raise UserError(f"--prompt {prompt_mode}: not auto, zero-shot, reference or an existing file")
        prompt_mode, prompt_text = "file", path.read_bytes().decode("utf-8")
    check_output_file(args.out, "--out", "preds.jsonl")  # before the calls, not after them
    if Path(args.out).resolve() == Path(args.references).resolve():
        raise UserError(f"--out {args.out} is the references file")
    records = read_records(args.references, "a reference sample")
    if not records:
        raise UserError(f"{args.references}: no references (empty file)")
    media = MediaIndex(media_roots(args.media_root, args.references), args.fps, args.max_frames)
    plans = [plan_for(record, where(args.references, line), media, prompt_mode, prompt_text)
             for line, record in records]
    if media.missing:
        shown = ", ".join(media.missing[:5]) + (f" and {len(media.missing) - 5} more" if len(media.missing) > 5 else "")
        raise UserError(f"{args.references}: {len(media.missing)} media file(s) not found: {shown} "
                        f"(relative paths resolve against --media-root, $ROOT_IMAGE_DIR and the references' folder)")
    settings = Settings(args)
    client = Judge(args.model, base_url=args.base_url, cache_path=cache_path(args), concurrency=args.concurrency,
                   max_retries=args.retries, timeout=args.timeout, budget=args.budget, temperature=args.temperature,
                   max_tokens=args.max_tokens, name="API baseline", model_flag="--model", cache_flag="--cache")
    requests = []
    for (line, record), plan in zip(records, plans, strict=True):
        key = json.dumps({"messages": describe(plan), "encoding": settings.describe()}, sort_keys=True,
                         ensure_ascii=False)
        info = {"references": str(args.references), "line": line, "media": (media_paths(record, "videos") or [])
                + (media_paths(record, "images") or []), "frames": plan.frames}
        requests.append(JudgeRequest(lambda plan=plan: materialise(plan, settings), info=info, key=key))
    try:
        results = client.run(requests, lambda reply: reply, desc=f"{args.model} zero-shot")
    except JudgeError as exc:
        raise UserError(f"api: {exc}") from None
    failed = [(line, r) for (line, _), r in zip(records, results, strict=True) if r.status != "ok"]
    if failed and not args.keep_failed:
        line, first = failed[0]
        raise UserError(f"api: {len(failed)} of {len(results)} requests failed (first: {where(args.references, line)}: "
                        f"{first.error}); replies received so far are cached in {client.cache.path} - re-run the same "
                        f"command to resume (or pass --keep-failed)")
    out = []
    for (_, record), plan, result in zip(records, plans, results, strict=True):
        response = result.value if result.status == "ok" else ""
        images = media_paths(record, "images")
        out.append({
            "response": response,
            "labels": assistant_text(record),
            "messages": [*plan.swift_messages, {"role": "assistant", "content": response}],
            "images": images if images else None,
            "videos": media_paths(record, "videos") or None,
            "objects": record.get("objects"),
            "logprobs": None,
            "dataset": str(args.references),
            "api": {"model": args.model, "prompt": plan.prompt, "frames": plan.frames,
                    "frame_times": plan.frame_times, "status": result.status, "calls": result.calls,
                    **({"error": result.error} if result.error else {})},
        })
    write_jsonl(args.out, out)
    s = client.stats
    print(f"api_baseline: wrote {len(out)} predictions to {args.out} (model {args.model}; {s.items} distinct requests: "
          f"{s.cached} cached, {s.calls} calls, {s.retries} retries, {len(failed)} failed; cache {client.cache.path})")
    formats = {box_format((rec.get("meta") or {}).get("answer_bbox_format") or "pixels") for _, rec in records
               if isinstance(rec.get("meta"), dict)}
    extra = "" if formats <= {BOX_FORMATS["pixels"]} else " --bbox-format pixels"
    print(f"score with: python eval/score.py --predictions {args.out} --references {args.references}{extra}")
    return 0


if __name__ == "__main__":
    run_cli(main)
