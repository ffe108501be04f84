"""The recipes' settings tables in the docs, generated from the configs, so that docs and configs cannot drift apart.

Each setting in recipes/configs/<recipe>.yaml carries its source in its comment (`learning_rate: 1.0e-5  # paper
Table 4: 1e-5`); the recipe script's defaults for DEEPSPEED and NPROC_PER_NODE carry theirs the same way
(`DEEPSPEED="${DEEPSPEED:-zero2}"  # official train.sh: DS_STAGE=zero2`). A doc holds a generated table between

    <!-- settings: <recipe> -->
    ...
    <!-- /settings -->

    python recipes/settings_doc.py            # --check: exit 1 and name every stale table (a test runs this)
    python recipes/settings_doc.py --write    # rewrite the tables in recipes/README.md and recipes/VIDEOLLAMA3.md
    python recipes/settings_doc.py --show videollama3_full   # print one table
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import UserError, run_cli  # noqa: E402
from recipes.lib import CONFIG_DIR, RECIPES_DIR, config_path, load_config  # noqa: E402

DOCS = (RECIPES_DIR / "README.md", RECIPES_DIR / "VIDEOLLAMA3.md")
SCRIPT_SETTINGS = ("NPROC_PER_NODE", "DEEPSPEED")  # recipe-script defaults shown with the config's settings
_BLOCK = re.compile(r"(<!-- settings: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /settings -->)", re.S)
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w]*):(?P<value>[^#]*?)\s*(?:#\s?(?P<comment>.*))?$")
_COMMENT_LINE = re.compile(r"^ +#\s?(?P<comment>.*)$")
_SCRIPT_LINE = re.compile(r'^(?P<key>[A-Z_]+)="\$\{(?P=key):-(?P<value>[^}]*)\}"\s*(?:#\s?(?P<comment>.*))?$')


def config_rows(name: str) -> list[tuple[str, str, str]]:
    """(setting, value as written, source comment) for every setting of a config, in file order. A setting without
    a comment is refused: every value must say where it comes from."""
    path = config_path(name)
    env, flags = load_config(path)  # the values swift reads; the text scan below must find exactly these keys
    rows: list[tuple[str, str, str]] = []
    in_env = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#") and not line.startswith(" "):
            continue
        more = _COMMENT_LINE.match(line)
        if more and rows:  # a comment continued on the next line
            key, value, comment = rows[-1]
            rows[-1] = (key, value, f"{comment} {more['comment'].strip()}".strip())
            continue
        match = _KEY_LINE.match(line)
        if not match:
            raise UserError(f"{path}:{number}: cannot read this line as `key: value  # source`")
        if match["indent"] == "" and match["key"] == "ENV":
            in_env = True
            continue
        if match["indent"] == "":
            in_env = False
        key = f"ENV {match['key']}" if in_env and match["indent"] else match["key"]
        if not match["comment"]:
            raise UserError(f"{path}:{number}: {key} has no source comment (`{match['key']}: value  # source`)")
        rows.append((key, match["value"].strip(), match["comment"].strip()))
    expected = [f"ENV {k}" for k in env] + list(flags)
    if sorted(k for k, _, _ in rows) != sorted(expected):
        raise UserError(f"{path}: settings read from the text ({len(rows)}) differ from the YAML's ({len(expected)})")
    return rows


def script_rows(name: str) -> list[tuple[str, str, str]]:
    """The recipe script's defaults for SCRIPT_SETTINGS, with their source comments (none when there is no script)."""
    script = RECIPES_DIR / f"{name}.sh"
    if not script.is_file():
        return []
    rows = []
    for line in script.read_text(encoding="utf-8").splitlines():
        match = _SCRIPT_LINE.match(line)
        if match and match["key"] in SCRIPT_SETTINGS:
            if not match["comment"]:
                raise UserError(f"{script}: {match['key']} has no source comment")
            rows.append((f"{match['key']} (script)", match["value"], match["comment"].strip()))
    return rows


def render(name: str) -> str:
    """The markdown table of a recipe's settings: what it sets and where each value comes from."""
    lines = [f"Generated from `recipes/configs/{name}.yaml`"
             + (f" and `recipes/{name}.sh`" if (RECIPES_DIR / f"{name}.sh").is_file() else "")
             + " (`python recipes/settings_doc.py --write`).", "",
             "| setting | value | source (the paper's or the upstream script's value, or why) |", "|---|---|---|"]
    for key, value, source in [*script_rows(name), *config_rows(name)]:
        lines.append(f"| `{key}` | `{value}` | {source.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def stale(docs: tuple[Path, ...] = DOCS) -> list[str]:
    """Tables that differ from what the configs generate, as `doc: recipe` (empty when all are current)."""
    out = []
    for doc in docs:
        for block in _BLOCK.finditer(doc.read_text(encoding="utf-8")):
            if block["body"] != render(block["name"]):
                out.append(f"{doc.name}: {block['name']}")
    return out


def write(docs: tuple[Path, ...] = DOCS) -> list[str]:
    """Rewrite every generated table; returns the ones that changed."""
    changed = []
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        new = _BLOCK.sub(lambda m: m.group(1) + render(m["name"]) + m.group(4), text)
        if new != text:
            changed.append(doc.name)
            doc.write_text(new, encoding="utf-8")
    return changed


def documented(docs: tuple[Path, ...] = DOCS) -> set[str]:
    return {m["name"] for doc in docs for m in _BLOCK.finditer(doc.read_text(encoding="utf-8"))}


def training_configs() -> list[str]:
    """Configs of training recipes (those that set a tuner), i.e. the ones the docs must tabulate."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if "tuner_type" in load_config(p)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="settings_doc.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="rewrite the generated tables in the docs")
    group.add_argument("--show", metavar="RECIPE", help="print one recipe's table")
    args = parser.parse_args(argv)
    if args.show:
        print(render(args.show), end="")
        return 0
    if args.write:
        changed = write()
        print(f"rewrote the settings tables in {', '.join(changed)}" if changed else "settings tables are current")
        return 0
    bad = stale()
    if bad:
        raise UserError(f"settings tables differ from the configs: {'; '.join(bad)} "
                        "(run python recipes/settings_doc.py --write)")
    print(f"settings tables are current ({', '.join(sorted(documented()))})")
    return 0


if __name__ == "__main__":
    run_cli(main)
