"""prompts/deeptrace_categories.py and prompts/deeptrace/categories.yaml: raw annotation tags → the paper's nine
fake-trace categories, a hand-made tag for every rule, multi-label tags, unmapped tags, custom and malformed maps."""

from __future__ import annotations

import re

import pytest
import yaml

from common.errors import UserError
from prompts.deeptrace_categories import DEFAULT_MAP, PAPER_CATEGORIES, load_category_map

MAP = load_category_map()

# one tag per rule of categories.yaml, in the file's order: the released tags third-party readers quote, the paper's
# definitions and examples (sec. 2.3), and the category names themselves
EVERY_RULE = [
    ("shape distortion", "Object Distortion"), ("Distortions (object outline)", "Object Distortion"),
    ("deformation", "Object Distortion"), ("kettle melts", "Object Distortion"),
    ("SUDDEN BLURRING", "Sudden Blurring"), ("face losing definition", "Sudden Blurring"),
    ("object trajectory", "Object Trajectory"), ("weird motion", "Object Trajectory"),
    ("movement paths", "Object Trajectory"), ("unsmooth motion", "Object Trajectory"),
    ("redundant object", "Redundant Object"), ("appearance", "Redundant Object"),
    ("extra object", "Redundant Object"),
    ("object merging", "Object Merging"), ("overlap", "Object Merging"), ("two otters fuse", "Object Merging"),
    ("object splitting", "Object Splitting"),
    ("background distortion", "Background Distortion"), ("rippling walls", "Background Distortion"),
    ("object disappearance", "Object Disappearance"),
    ("Unexpected Move", "Unexpected Move"), ("still things", "Unexpected Move"),
]


def test_the_default_map_is_the_papers_nine_in_its_order():
    assert MAP.names == PAPER_CATEGORIES
    assert MAP.source == str(DEFAULT_MAP)
    for category in yaml.safe_load(DEFAULT_MAP.read_text())["categories"]:
        for rule in category["rules"]:
            assert rule.get("source"), rule  # every rule says where it comes from
            assert any(re.search(rule["pattern"], tag, re.IGNORECASE) for tag, name in EVERY_RULE
                       if name == category["name"]), f"no tag below exercises {rule['pattern']!r}"


@pytest.mark.parametrize("tag, category", EVERY_RULE)
def test_every_rule(tag, category):
    assert MAP.map([tag]) == ([category], [])


@pytest.mark.parametrize("tags, categories", [
    (["sudden blurring", "object distortion"], ["Sudden Blurring", "Object Distortion"]),  # the tags' order
    (["extra blurry arm"], ["Sudden Blurring", "Redundant Object"]),  # one tag, two: in the paper's order
    (["object merging / object disappearance"], ["Object Merging", "Object Disappearance"]),
    (["disappearance"], ["Object Disappearance"]),  # not "appearance": no Redundant Object
    (["extra tree in the background"], ["Redundant Object"]),  # naming the background is not distorting it
    (["background deformation"], ["Background Distortion"]),  # not Object Distortion
    (["deformation", "deformation", "shape distortion"], ["Object Distortion"]),  # once
    ([], []),
])
def test_multi_label(tags, categories):
    assert MAP.map(tags) == (categories, [])


def test_unmapped_tags_are_kept_and_reported():
    assert MAP.map(["light effect", "weird motion", "liquid motion", "light effect"]) == (
        ["light effect", "Object Trajectory", "liquid motion"], ["light effect", "liquid motion"])


def test_a_custom_map(tmp_path):
    path = tmp_path / "ours.yaml"
    path.write_text("categories:\n"
                    "  - name: Hands\n    rules:\n      - pattern: 'finger|hand'\n"
                    "  - name: Physics\n    rules:\n      - pattern: 'float'\n      - 'gravity'\n")
    ours = load_category_map(path)
    assert ours.names == ("Hands", "Physics") and ours.source == str(path)
    assert ours.map(["Six FINGERS", "no gravity", "weird motion"]) == (["Hands", "Physics", "weird motion"],
                                                                       ["weird motion"])


@pytest.mark.parametrize("text, pattern", [
    ("categories: [\n", r"not valid YAML"),
    ("names: []\n", r"a category map is a YAML mapping with a non-empty list `categories:`"),
    ("categories:\n  - name: A\n", r"category 1: needs a `name` and a non-empty list of `rules`"),
    ("categories:\n  - name: A\n    rules: ['(']\n", r"category 'A', rule 1: bad pattern '\(': missing \)"),
    ("categories:\n  - name: A\n    rules: ['a']\n  - name: A\n    rules: ['b']\n", r"category 'A' is listed twice"),
])
def test_a_malformed_map_is_one_line(tmp_path, text, pattern):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=rf"bad\.yaml: {pattern}") as exc:
        load_category_map(path)
    assert "\n" not in str(exc.value)
    with pytest.raises(UserError, match=r"nope\.yaml: cannot read the category map"):
        load_category_map(tmp_path / "nope.yaml")
