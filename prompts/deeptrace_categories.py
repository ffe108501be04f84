"""The DeeptraceReward paper's nine fake-trace categories, and the mapping of raw annotation tags onto them.

The mapping is data: `prompts/deeptrace/categories.yaml` (each category with the patterns it covers and where each
rule comes from); `--category-map FILE` in the converters loads another file of the same shape. Matching is
case-insensitive and multi-label; a tag that matches no category is kept as it is (and counted by the converters).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError

DEFAULT_MAP = Path(__file__).resolve().parent / "deeptrace" / "categories.yaml"


@dataclass(frozen=True)
class Category:
    name: str
    patterns: tuple[re.Pattern[str], ...]


@dataclass
class CategoryMap:
    """Raw tags → category names, in the order of the map's categories (the paper's, for the default map)."""

    source: str
    categories: tuple[Category, ...]

    def __post_init__(self) -> None:
        self._cache: dict[str, tuple[int, ...]] = {}
        self._mapped: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}  # the usual tag sets, mapped once

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    def _matches(self, tag: str) -> tuple[int, ...]:
        hit = self._cache.get(tag)
        if hit is None:
            hit = tuple(i for i, c in enumerate(self.categories) if any(p.search(tag) for p in c.patterns))
            if len(self._cache) < 100_000:
                self._cache[tag] = hit
        return hit

    def map(self, tags: Sequence[str]) -> tuple[list[str], list[str]]:
        """(categories, unmapped tags): each tag replaced by the categories it matches (in the map's order), or kept
        as it is when it matches none; in the tags' order, without repeats. The unmapped tags are listed too."""
        key = tuple(tags)
        done = self._mapped.get(key)
        if done is not None:
            return list(done[0]), list(done[1])
        out: list[str] = []
        unmapped: list[str] = []
        for tag in key:
            hit = self._matches(tag)
            if not hit and tag not in unmapped:
                unmapped.append(tag)
            for name in [self.categories[i].name for i in hit] if hit else [tag]:
                if name not in out:
                    out.append(name)
        if len(self._mapped) < 10_000:
            self._mapped[key] = (list(out), list(unmapped))
        return out, unmapped


def load_category_map(path: str | Path | None = None) -> CategoryMap:
    """The map in `path` (default: the paper's, prompts/deeptrace/categories.yaml, read once); a malformed file is a
    `UserError` naming it and the entry."""
    return _default_map() if path is None else _load(Path(path))


@functools.cache
def _default_map() -> CategoryMap:
    return _load(DEFAULT_MAP)


def _load(path: Path) -> CategoryMap:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read the category map: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: the category map is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    entries = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path}: a category map is a YAML mapping with a non-empty list `categories:` of "
                        "{name, rules: [{pattern, source}]}")
    categories = []
    for i, entry in enumerate(entries, 1):
        name = entry.get("name") if isinstance(entry, dict) else None
        rules = entry.get("rules") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip() or not isinstance(rules, list) or not rules:
            raise UserError(f"{path}: category {i}: needs a `name` and a non-empty list of `rules`")
        patterns = []
        for j, rule in enumerate(rules, 1):
            pattern = rule.get("pattern") if isinstance(rule, dict) else rule
            if not isinstance(pattern, str) or not pattern:
                raise UserError(f"{path}: category {name!r}, rule {j}: `pattern` must be a non-empty string")
            try:
                patterns.append(re.compile(pattern, re.IGNORECASE))
            except re.error as exc:
                raise UserError(f"{path}: category {name!r}, rule {j}: bad pattern {pattern!r}: {exc}") from None
        categories.append(Category(name.strip(), tuple(patterns)))
    names = [c.name for c in categories]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{path}: category {twice[0]!r} is listed twice")
    return CategoryMap(str(path), tuple(categories))


PAPER_CATEGORIES: tuple[str, ...] = (
    "Object Distortion", "Sudden Blurring", "Object Trajectory", "Redundant Object", "Object Merging",
    "Object Splitting", "Background Distortion", "Object Disappearance", "Unexpected Move",
)  # the paper's order (sec. 2.3, Figures 4-5); the default map lists them so (a test checks it)
