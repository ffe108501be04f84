"""A tiny, randomly initialised BERT encoder with a local WordPiece tokenizer (no model hub), for BERTScore tests.

    python tests/support/tiny_bert.py OUT_DIR [--seed 0]

The directory loads with `AutoModel` / `AutoTokenizer.from_pretrained` (slow and fast tokenizer), which is all
bert-score needs (`--bertscore-model OUT_DIR --bertscore-layers 2`). The vocabulary is the special tokens, every ASCII
letter, digit and punctuation mark (so any English text tokenizes without [UNK]), and the words of the DeepfakeJudge
answer formats.
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

_WORDS = """the a an of to in is it that and this image fake real edited reasoning answer lighting shadows skin texture
hands fingers face eyes background smooth natural consistent inconsistent blurry unnatural artifacts edges light
""".split()


def build_bert(out_dir: str | Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny BERT (`layers` layers, `hidden` wide) and its tokenizer to `out_dir`; returns it."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *_WORDS]
    vocab_file = out / "vocab.txt"
    vocab_file.write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    BertTokenizer(str(vocab_file), do_lower_case=True, model_max_length=512).save_pretrained(out)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=512)
    BertModel(config).eval().save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(build_bert(args.out_dir, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
