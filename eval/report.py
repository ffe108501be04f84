"""A self-contained HTML report of one evaluation: metrics with CIs, charts, and a card per sample.

    python eval/report.py --predictions preds.jsonl --references test.jsonl [--metrics metrics.json] --out report/

Writes DIR/index.html + DIR/assets/ (matplotlib PNGs, frame thumbnails; no external URLs), built in a temporary
folder beside DIR, then put into place: a new or empty DIR is renamed into place; in a DIR an earlier report wrote,
only that report's files (listed in DIR/.report-files.json) are replaced or removed, never the user's files beside
them; any other non-empty DIR is refused. Open DIR/index.html in any browser (file:// works).

- Metrics table with 95% CIs: from --metrics (eval/score.py --out; judge metrics included) or, without it, computed
  here by the task's scorer with --no-judge semantics (explanation and overall stay empty).
- Per-category chart (in the spirit of the paper's Figure 5; --compare NAME=metrics.json adds other models) and a
  confusion matrix (true vs predicted verdict / score / choice).
- Per-sample cards: for DeeptraceReward the frame at the ground-truth onset and at the predicted onset with the
  ground-truth box (green) and the predicted box (red), both explanations and the judge score (from the judge's reply
  cache); images and verdicts/scores/choices for FakeClue and DeepfakeJudge. Filters (wrong verdict, IoU below a
  threshold, unparseable, label, category, text), sorting and pagination in plain JavaScript; images load lazily.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import UserError, run_cli  # noqa: E402
from common.join import Pair, join  # noqa: E402
from common.outputs import check_owned_dir, write_owned_dir  # noqa: E402
from eval import judging, tasks  # noqa: E402
from eval.report_cards import LABEL_ORDER, CardContext, checked  # noqa: E402
from eval.report_media import (  # noqa: E402
    draw_boxes,
    frame_index,
    media_roots,
    probe_video,
    read_frames,
    resolve_media,
    scaled,
)
from eval.tables import fmt_ci  # noqa: E402

STATIC = Path(__file__).resolve().parent / "report_static"
UNPARSEABLE = "unparseable"


# --- media ----------------------------------------------------------------------------------------------------------


class MediaWriter:
    """Collects thumbnail jobs from the card builders, then writes them grouped by file (each video opened once).

    `frame()` / `image()` return the card's frame entry at once; `flush()` fills in its size, or replaces `src` by
    None and sets `error` when the media cannot be found or read.
    """

    def __init__(self, assets: Path, roots: list[Path], *, enabled: bool = True, width: int = 480):
        self.assets, self.roots, self.enabled, self.width = assets, roots, enabled, width
        self.jobs: dict[tuple[str, str], list[tuple[float | None, list, dict[str, Any]]]] = {}
        self.count = 0
        self.written = 0
        self.errors: Counter[str] = Counter()

    def _add(self, kind: str, path: str, t: float | None, boxes: list, caption: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"src": None, "caption": caption}
        if not self.enabled:
            entry["error"] = "frames not drawn (--no-frames)"
            return entry
        entry["src"] = f"assets/media/{self.count:06d}.jpg"
        self.count += 1
        self.jobs.setdefault((kind, path), []).append((t, boxes, entry))
        return entry

    def frame(self, video: str, t: float | None, boxes: list, caption: str) -> dict[str, Any]:
        """Frame at `t` seconds (None: the middle frame) with boxes [(ratio box or None, rgb), ...] drawn."""
        return self._add("video", video, t, boxes, caption)

    def image(self, path: str, boxes: list, caption: str) -> dict[str, Any]:
        return self._add("image", path, None, boxes, caption)

    def _save(self, picture, boxes: list, entry: dict[str, Any]) -> None:
        from PIL import Image

        image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
        image = draw_boxes(scaled(image.convert("RGB"), self.width), boxes)
        out = self.assets.parent / entry["src"]
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out, format="JPEG", quality=85)
        entry["w"], entry["h"] = image.size
        self.written += 1

    def _fail(self, jobs: list, reason: str) -> None:
        for _, _, entry in jobs:
            entry["src"], entry["error"] = None, reason
        self.errors[reason] += len(jobs)

    def flush(self, progress: bool | None = None) -> None:
        from PIL import Image
        from tqdm import tqdm

        bar = tqdm(total=self.count, desc="report: drawing frames", unit="frame", file=sys.stderr,
                   disable=None if progress is None else not progress, dynamic_ncols=True)
        for (kind, name), jobs in self.jobs.items():
            path = resolve_media(name, self.roots)
            if path is None:
                self._fail(jobs, f"{kind} not found")
            elif kind == "image":
                try:
                    with Image.open(path) as image:
                        image.load()
                        for _, boxes, entry in jobs:
                            self._save(image, boxes, entry)
                except Exception as exc:  # an unreadable image: its cards say so, the report goes on
                    self._fail(jobs, f"cannot read image ({type(exc).__name__})")
            else:
                try:
                    info = probe_video(path)
                    indices = [frame_index(info.duration / 2 if t is None else t, info) for t, _, _ in jobs]
                    unique = sorted(set(indices))
                    frames = dict(zip(unique, read_frames(path, unique), strict=True))
                    for index, (_, boxes, entry) in zip(indices, jobs, strict=True):
                        self._save(frames[index], boxes, entry)
                except Exception as exc:  # an unreadable video: its cards say so, the report goes on
                    self._fail(jobs, f"cannot read video ({type(exc).__name__})")
            bar.update(len(jobs))
        bar.close()


# --- the judge's reply cache (the task reads its per-sample judge scores from it) ------------------------------


def find_judge_cache(judge_cache: str | None, result: dict[str, Any] | None, metrics_path: str | None,
                     predictions: str) -> Path | None:
    """`--judge-cache`, else the metrics' judge cache (as written, or beside the metrics file), else
    `<predictions>.judge.jsonl`; None when there is none. A named cache that does not exist is an error."""
    info = (result or {}).get("judge") or {}
    candidates = []
    if judge_cache:
        candidates.append(Path(judge_cache))
    elif info.get("cache"):
        candidates.append(Path(info["cache"]))
        if metrics_path:
            candidates.append(Path(metrics_path).resolve().parent / info["cache"])
    if not judge_cache:
        candidates.append(Path(str(Path(predictions).with_suffix("")) + ".judge.jsonl"))
    for path in candidates:
        if path.is_file():
            return path
    if judge_cache:
        raise UserError(f"--judge-cache {judge_cache}: no such file")
    return None


# --- metrics --------------------------------------------------------------------------------------------------------


def load_metrics(path: str) -> dict[str, Any]:
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(result, dict) or not isinstance(result.get("metrics"), dict):
        raise UserError(f"{path}: not a metrics file of eval/score.py --out (no 'metrics' object)")
    return result


# --- charts ---------------------------------------------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def category_table_from_cards(cards: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for card in cards:
        for cat in card.get("categories") or ():
            groups.setdefault(cat, []).append(card)
    table = {}
    for cat, members in sorted(groups.items()):
        judged = [c for c in members if c.get("correct") is not None]
        acc = 100.0 * sum(bool(c["correct"]) for c in judged) / len(judged) if judged else None
        table[cat] = {"metrics": {"accuracy": acc}, "counts": {"n": len(members)}}
    return table


ACCURACY_CHART = (("accuracy", "Acc. ↑", lambda v: v),)  # the chart of a task without per-category metrics


def category_chart(models: list[tuple[str, dict[str, Any]]], path: Path,
                   panels: tuple[tuple[str, str, Callable[[float], float]], ...]) -> list[str]:
    """Grouped horizontal bars, one panel per metric of `panels` (the task's CHART_METRICS; the first four with
    values are drawn); returns the metric titles drawn ([] = nothing to draw)."""
    first = models[0][1]
    cats = list(first)
    chosen = [(k, t, f) for k, t, f in (panels or ACCURACY_CHART)
              if any((first[c].get("metrics") or {}).get(k) is not None for c in cats)]
    chosen = chosen[:4]
    if not cats or not chosen:
        return []
    plt = _plt()
    n_models = len(models)
    height = max(2.5, 0.32 * len(cats) * max(1, n_models) + 1.4)
    fig, axes = plt.subplots(1, len(chosen), figsize=(2.9 * len(chosen) + 2.2, height), sharey=True, squeeze=False)
    bar = 0.8 / n_models
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = [f"{c} ({(first[c].get('counts') or {}).get('n', '?')})" for c in cats]
    for ax, (key, title, transform) in zip(axes[0], chosen, strict=True):
        for m, (name, table) in enumerate(models):
            values = []
            for c in cats:
                v = ((table.get(c) or {}).get("metrics") or {}).get(key)
                values.append(transform(v) if isinstance(v, (int, float)) else math.nan)
            ys = [i + (m - (n_models - 1) / 2) * bar for i in range(len(cats))]
            ax.barh(ys, values, height=bar, label=name, color=colours[m % len(colours)])
            if n_models == 1:
                for y, v in zip(ys, values, strict=True):
                    if not math.isnan(v):
                        ax.text(min(v, 100) + 1, y, f"{v:.0f}", va="center", fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlim(0, 110)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[0][0].set_yticks(range(len(cats)), labels)
    axes[0][0].invert_yaxis()
    if n_models > 1:
        axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Per category (n samples)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [t for _, t, _ in chosen]


def _order(values: set[str]) -> list[str]:
    known = [v for v in LABEL_ORDER if v in values]
    return known + sorted(values - set(known))


def confusion_chart(cards: list[dict[str, Any]], path: Path) -> dict[str, Any] | None:
    pairs = [(c.get("truth"), c.get("pred")) for c in cards if c.get("truth") is not None]
    if not pairs:
        return None
    rows = _order({t for t, _ in pairs})
    cols = _order({p for _, p in pairs if p is not None} | set(rows))
    if any(p is None for _, p in pairs):
        cols.append(UNPARSEABLE)
    counts = [[0] * len(cols) for _ in rows]
    for t, p in pairs:
        counts[rows.index(t)][cols.index(UNPARSEABLE if p is None else p)] += 1
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 2.2, 0.8 * len(rows) + 1.8))
    shares = [[v / max(1, sum(r)) for v in r] for r in counts]
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(counts):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v}\n{100 * shares[i][j]:.0f}%", ha="center", va="center", fontsize=8,
                    color="white" if shares[i][j] > 0.6 else "black")
    ax.set_xticks(range(len(cols)), cols, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (row %)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return {"rows": rows, "cols": cols, "counts": counts}


# --- HTML -----------------------------------------------------------------------------------------------------------

E = html.escape


def _num(value: Any) -> str:
    return "–" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.1f}"


def _titles(module, task: str) -> dict[str, str]:
    """Metric titles, in the table's order, from the task module's `metric_rows`."""
    return {key: title for key, title, _ in module.metric_rows(task)}


def breakdowns(result: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The result's `by_*` tables ({group: {"metrics": {...}, "counts": {...}}}): by_category, by_cate, by_source."""
    out = {}
    for key, table in (result or {}).items():
        if key.startswith("by_") and isinstance(table, dict) and table and all(
                isinstance(v, dict) and isinstance(v.get("metrics"), dict) for v in table.values()):
            out[key] = table
    return out


def category_table(result: dict[str, Any] | None) -> dict[str, Any] | None:
    tables = breakdowns(result)
    return tables.get("by_category") or tables.get("by_cate")


def metrics_html(result: dict[str, Any] | None, module, compares: list[tuple[str, dict[str, Any]]], name: str,
                 source: str) -> str:
    titles = _titles(module, result.get("task"))
    metrics = result.get("metrics") or {}
    keys = [k for k in titles if k in metrics] + [k for k in metrics if k not in titles]
    ci = result.get("ci95") or {}
    per_video = ((result.get("per_video") or {}).get("metrics")) or None
    head = ["metric", E(name), "95% CI"] + (["per video (ours)"] if per_video else []) + [E(n) for n, _ in compares]
    out = ["<table id='metrics-table' class='metrics'><thead><tr>"
           + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    for key in keys:
        cells = [E(titles.get(key, key.replace("_", " "))), _num(metrics.get(key)), fmt_ci(ci.get(key))]
        if per_video:
            cells.append(_num(per_video.get(key)))
        cells += [_num((other.get("metrics") or {}).get(key)) for _, other in compares]
        out.append(f"<tr data-metric='{E(key)}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    counts = result.get("counts") or {}
    if counts:
        out.append("<p class='counts'>" + ", ".join(f"{E(str(k))} {E(str(v))}" for k, v in counts.items()) + "</p>")
    notes = [f"Metrics: {E(source)}."]
    if not ci:
        notes.append("No confidence intervals (bootstrap off).")
    judge = result.get("judge")
    if judge:
        notes.append(f"Explanation judge: {E(str(judge.get('model')))} ({E(str(judge.get('items')))} distinct pairs).")
        if judging.warning(judge):  # failed judge calls: partial or null judge-based metrics
            notes.append(f"<span class='warn' id='judge-partial'>{E(judging.warning(judge))}</span>")
    elif "explanation" in metrics:
        notes.append("Explanation and overall need the LLM judge: run <code>eval/score.py --out metrics.json</code> "
                     "with the judge and pass <code>--metrics</code>.")
    issues = (result.get("parse") or {}).get("issues")
    if issues:
        notes.append("Parse issues: " + ", ".join(f"{E(k)} {v}" for k, v in issues.items()) + ".")
    out.append("<p class='note'>" + " ".join(notes) + "</p>")
    return "\n".join(out)


def breakdown_html(result: dict[str, Any] | None, module) -> str:
    if not result:
        return ""
    titles = _titles(module, result.get("task"))
    out = []
    for key, table in breakdowns(result).items():
        title = "By " + {"cate": "category"}.get(key[3:], key[3:].replace("_", " "))
        cols = []
        for entry in table.values():
            for metric, value in (entry.get("metrics") or {}).items():
                if value is not None and metric not in cols:
                    cols.append(metric)
        order = [k for k in titles if k in cols] + [k for k in cols if k not in titles]
        out.append(f"<h3>{title}</h3><table class='breakdown' id='{key.replace('_', '-')}'><thead><tr><th>"
                   f"{title.split()[-1]}</th><th>n</th>"
                   + "".join(f"<th>{E(titles.get(k, k))}</th>" for k in order) + "</tr></thead><tbody>")
        for group, entry in table.items():
            n = (entry.get("counts") or {}).get("n", "")
            out.append(f"<tr><td>{E(str(group))}</td><td>{E(str(n))}</td>"
                       + "".join(f"<td>{_num((entry.get('metrics') or {}).get(k))}</td>" for k in order) + "</tr>")
        out.append("</tbody></table>")
    return "\n".join(out)


def _json_for_script(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def page_html(*, title: str, header: str, metrics: str, charts: str, breakdown: str, data: dict[str, Any]) -> str:
    css = (STATIC / "report.css").read_text(encoding="utf-8")
    js = (STATIC / "report.js").read_text(encoding="utf-8")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{E(title)}</title>
<style>
{css}
</style>
</head>
<body>
<header id="top">
<h1>{E(title)}</h1>
{header}
<nav><a href="#metrics">Metrics</a> · <a href="#charts">Charts</a> · <a href="#breakdown">Breakdown</a> ·
<a href="#samples">Samples</a></nav>
</header>
<main>
<section id="metrics"><h2>Metrics</h2>
{metrics}
</section>
<section id="charts"><h2>Charts</h2>
{charts}
</section>
<section id="breakdown"><h2>Breakdown</h2>
{breakdown or "<p class='note'>No breakdown in the metrics.</p>"}
</section>
<section id="samples"><h2>Samples</h2>
<p class="legend"><span class="swatch gt"></span> ground-truth box <span class="swatch pred"></span> predicted box</p>
<form id="filters" autocomplete="off">
<label><input type="checkbox" id="filter-wrong"> wrong verdict</label>
<label><input type="checkbox" id="filter-unparseable"> unparseable</label>
<label><input type="checkbox" id="filter-iou"> IoU below <input type="number" id="iou-threshold" min="0" max="100"
 step="1" value="{data['iou_threshold']:g}"></label>
<label>label <select id="filter-truth"><option value="">all</option></select></label>
<label>category <select id="filter-category"><option value="">all</option></select></label>
<label>search <input type="search" id="filter-search" placeholder="text in the card"></label>
<label>sort <select id="sort">
<option value="input">input order</option><option value="iou">IoU ↑</option>
<option value="tdist">time distance ↓</option><option value="judge">judge score ↑</option></select></label>
<label>per page <select id="page-size"><option>10</option><option>25</option><option>50</option>
<option>100</option><option>250</option></select></label>
<button type="button" id="reset-filters">reset</button>
</form>
<div class="pager" id="pager-top"></div>
<div id="cards"></div>
<div class="pager" id="pager-bottom"></div>
</section>
</main>
<script type="application/json" id="report-data">{_json_for_script(data)}</script>
<script>
{js}
</script>
</body>
</html>
"""


# --- the report -----------------------------------------------------------------------------------------------------


MANIFEST = ".report-files.json"  # in the report folder: the files the report wrote there (common/outputs.py)


def check_out(out: str | os.PathLike[str], flag: str = "--out") -> None:
    """Refuse, before any work, a folder the report may not write: a file, or a non-empty folder it did not make."""
    check_owned_dir(out, MANIFEST, flag, "eval/report.py")


def write_report(out: Path, build: Callable[[Path], None]) -> None:
    """Build into a temporary folder beside `out`, then put the files into place: a new or empty folder is renamed
    into place; in a folder an earlier report wrote, only that report's files are replaced or removed (its
    manifest lists them), and the user's own files beside them are left alone."""
    write_owned_dir(out, build, manifest=MANIFEST, flag="--out", owner="eval/report.py", last="index.html")


@dataclass
class Settings:
    """How the report is drawn (what is scored comes from the task's options)."""

    name: str | None = None  # the model's name (default: the predictions' file name)
    compare: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # other models' metrics
    source: str = "eval/score.py"  # where the metrics come from, said under the table
    metrics_path: str | None = None
    judge_cache: str | None = None
    judge_model: str | None = None
    media_roots: list[str] = field(default_factory=list)
    frames: bool = True
    thumb_width: int = 480
    page_size: int = 25
    iou_threshold: float = 50.0
    progress: bool | None = None


def write(out: Path, pairs: list[Pair], scored: tasks.Scored, *, task: str, predictions: str, references: str,
          settings: Settings, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the report of `scored` (the task's per-sample rows) to `out`; the table shows `result` (default:
    `scored` itself). Returns a summary."""
    module = tasks.get(task)
    result = dict(scored) if result is None else result
    name = settings.name or Path(predictions).stem
    judge_cache = find_judge_cache(settings.judge_cache, result, settings.metrics_path, predictions)
    judge_info = result.get("judge") or {}
    judge_model = settings.judge_model or judge_info.get("model")
    started = time.time()

    def build(tmp: Path) -> None:
        assets = tmp / "assets"
        assets.mkdir()
        roots = media_roots(settings.media_roots, references)
        writer = MediaWriter(assets, roots, enabled=settings.frames, width=settings.thumb_width)
        ctx = CardContext(task=task, references=references, result=result, media=writer, judge_cache=judge_cache,
                          judge_model=judge_model, judge_params=judge_info.get("params"))
        cards = checked(module.report_cards(scored.samples, pairs, ctx), pairs, task)
        writer.flush(settings.progress)
        charts = []
        models = [(name, category_table(result) or category_table_from_cards(cards))]
        models += [(n, category_table(r)) for n, r in settings.compare if category_table(r)]
        drawn = category_chart(models, assets / "category.png", module.CHART_METRICS)
        if drawn:
            charts.append("<figure><img id='category-chart' src='assets/category.png' alt='per-category metrics'>"
                          f"<figcaption>Per category: {E(', '.join(drawn))} (in the spirit of the paper's Figure 5)"
                          "</figcaption></figure>")
        confusion = confusion_chart(cards, assets / "confusion.png")
        if confusion:
            charts.append("<figure><img id='confusion-chart' src='assets/confusion.png' alt='confusion matrix'>"
                          "<figcaption>True vs predicted (counts and row %)</figcaption></figure>")
        header = [f"<p class='meta'>task <b>{E(task)}</b> · {len(cards)} samples · predictions "
                  f"<code>{E(str(predictions))}</code> · references <code>{E(str(references))}</code> · "
                  f"generated {E(time.strftime('%Y-%m-%d %H:%M:%S'))}</p>"]
        problems = [f"{count} {reason}" for reason, count in writer.errors.items()]
        if problems:
            header.append(f"<p class='warn' id='media-problems'>Pictures missing: {E('; '.join(problems))} "
                          f"(relative paths: pass --media-root).</p>")
        header += [f"<p class='meta'>{E(note)}</p>" for note in ctx.notes]
        data = {"task": task, "name": name, "iou_threshold": settings.iou_threshold,
                "page_size": settings.page_size, "cards": cards,
                "has_iou": any(c.get("iou") is not None for c in cards),
                "has_judge": any(c.get("judge") is not None for c in cards)}
        page = page_html(title=f"{name} — {task} evaluation report", header="\n".join(header),
                         metrics=metrics_html(result, module, settings.compare, name, settings.source),
                         charts="\n".join(charts) or "<p class='note'>No chart (no categories, no labels).</p>",
                         breakdown=breakdown_html(result, module), data=data)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        summary.update(cards=len(cards), pictures=writer.written, missing=sum(writer.errors.values()))

    summary: dict[str, Any] = {}
    write_report(out, build)
    summary["seconds"] = round(time.time() - started, 1)
    return summary


def build_parser(task_module=None, *, full: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="report.py", add_help=full, description=__doc__.split("\n\n")[0],
                                     epilog="Task-specific flags: --task NAME --help. See eval/README.md (Visual "
                                            "report).")
    parser.add_argument("--predictions", required=full, metavar="JSONL", help="swift infer --result_path output")
    parser.add_argument("--references", required=full, metavar="JSONL", help="the converter's JSONL (same order)")
    parser.add_argument("--out", required=full, metavar="DIR", help="report directory (index.html + assets/)")
    parser.add_argument("--metrics", metavar="JSON",
                        help="eval/score.py --out file: the table shows it (judge metrics included) and the cards are "
                             "scored with its settings (default: scored here, without the judge)")
    parser.add_argument("--task", choices=sorted(tasks.TASKS),
                        help="default: the metrics' task, else the references' meta.task")
    parser.add_argument("--name", help="model name shown in the report (default: the predictions' file name)")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=JSON",
                        help="another model's metrics.json, shown beside this one in the table and the category "
                             "chart (repeatable)")
    tasks.add_scoring_arguments(parser)
    parser.add_argument("--judge-cache", metavar="JSONL", help="judge reply cache for per-sample judge scores "
                                                               "(default: the metrics' judge cache, else "
                                                               "<predictions>.judge.jsonl if present)")
    parser.add_argument("--judge-model", help="judge model of that cache (default: the metrics' judge, else gpt-4.1)")
    parser.add_argument("--media-root", action="append", default=[], metavar="DIR",
                        help="where relative media paths are found (also $ROOT_IMAGE_DIR, the references' folder)")
    parser.add_argument("--no-frames", action="store_true", help="no thumbnails (fast; cards without pictures)")
    parser.add_argument("--thumb-width", type=int, default=480, metavar="PX", help="thumbnail width (default 480)")
    parser.add_argument("--page-size", type=int, default=25, choices=(10, 25, 50, 100, 250),
                        help="cards per page (default 25)")
    parser.add_argument("--iou-threshold", type=float, default=50.0, metavar="X",
                        help="initial value of the 'IoU below' filter, 0-100 (default 50)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: on a terminal)")
    if task_module is not None:
        task_module.add_arguments(parser.add_argument_group(f"{task_module.NAME} options"))
    return parser


def scoring_options(module, args: argparse.Namespace, parser: argparse.ArgumentParser,
                    result: dict[str, Any] | None) -> argparse.Namespace:
    """The task's options for scoring the cards here: the flags given, else the metrics' settings (so the cards
    agree with the table), else the defaults; never the judge, and the task's OFFLINE values (no model loaded)."""
    options = tasks.options(module)
    settings = (result or {}).get("settings") or {}
    for key in vars(options):
        value = getattr(args, key, getattr(options, key))
        if value == parser.get_default(key) and settings.get(key) is not None:
            value = settings[key]
        setattr(options, key, value)
    options.task = args.task or (result or {}).get("task")
    if result is not None:
        options.bootstrap = 0  # the table's intervals come from the metrics file
    for key, value in module.OFFLINE.items():
        setattr(options, key, value)
    return options


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre, _ = build_parser(full=False).parse_known_args(argv)
    result = load_metrics(pre.metrics) if pre.metrics else None
    task = None
    if not {"-h", "--help"} & set(argv):
        task = tasks.task_of(pre.references, pre.task or (result or {}).get("task")) if pre.references else pre.task
    module = tasks.get(task) if task else None
    parser = build_parser(module)
    args = parser.parse_args(argv)
    if not 0 <= args.iou_threshold <= 100:
        raise UserError(f"--iou-threshold {args.iou_threshold:g}: expected 0-100")
    check_out(args.out)  # before the work
    if result is not None and result.get("task") not in (None, task):
        raise UserError(f"--metrics {args.metrics}: task {result.get('task')!r}, but the report is for {task!r}")
    pairs, verified = join(args.predictions, args.references)
    if not pairs:
        raise UserError(f"{args.references}: no references (empty file)")
    n = ((result or {}).get("counts") or {}).get("n")
    if isinstance(n, int) and n != len(pairs):
        raise UserError(f"--metrics {args.metrics}: scored {n} samples, but {args.predictions} has {len(pairs)}; "
                        f"the metrics come from another run")
    compares = []
    for item in args.compare:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--compare {item!r}: expected NAME=metrics.json")
        compares.append((name, load_metrics(path)))
    context = tasks.ScoreContext(predictions=args.predictions, references=args.references, join=verified)
    scored = module.score(pairs, scoring_options(module, args, parser, result), context=context)
    settings = Settings(name=args.name, compare=compares, metrics_path=args.metrics, judge_cache=args.judge_cache,
                        judge_model=args.judge_model, media_roots=args.media_root, frames=not args.no_frames,
                        thumb_width=args.thumb_width, page_size=args.page_size, iou_threshold=args.iou_threshold,
                        progress=args.progress,
                        source=f"{args.metrics} (eval/score.py)" if result is not None else
                        "computed by eval/score.py's scorer here, --no-judge")
    summary = write(Path(args.out), pairs, scored, task=task, predictions=args.predictions,
                    references=args.references, settings=settings, result=result)
    print(f"report: wrote {Path(args.out) / 'index.html'} ({summary['cards']} samples, {summary['pictures']} pictures"
          + (f", {summary['missing']} missing" if summary["missing"] else "") + f"; {summary['seconds']} s)")
    return 0


if __name__ == "__main__":
    run_cli(main)
