"""Tiny, randomly initialised multimodal models built locally (no model hub), for tests and the CPU demo.

    python tests/support/tiny_models.py qwen2_5_vl OUT_DIR [--hidden 64] [--seed 0]

Each builder writes a `save_pretrained` directory that loads with `AutoModelForImageTextToText` /
`AutoProcessor.from_pretrained` and through `swift sft --model OUT_DIR --model_type T --template T`, plus
`tiny_model.json` naming the ms-swift model type and template to pass. Qwen's special tokens sit at their real
ids (ms-swift hard-codes `<|image_pad|>`=151655 and `<|video_pad|>`=151656), so the tokenizer is a small
byte-level BPE padded with never-produced filler tokens up to id 151642, then Qwen's 22 added tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.errors import UserError, run_cli  # noqa: E402

QWEN_VOCAB_SIZE = 151936
QWEN_FIRST_SPECIAL_ID = 151643
QWEN_SPECIAL_TOKENS = [  # ids 151643..151664, in order (Qwen2 / Qwen2.5-VL tokenizer_config.json)
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
]
# Qwen2's pre-tokenizer split pattern (tokenizer.json of Qwen2/Qwen2.5 models).
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Text the BPE is trained on: the answer formats of the three systems, so that their words are short token runs.
_CORPUS = """
FAKE. The video is AI-generated. The unnatural part is at [12, 34, 56, 78] starting 0.5 seconds.
The reason is because the hand has six fingers and the object merges into the background.
REAL. The video is real. There is no unnatural part. This is a fake image. This is a real image.
<reasoning>The lighting is inconsistent and the texture is too smooth.</reasoning> <answer>fake</answer>
<score>1</score> <score>5</score> <answer>A</answer> <answer>B</answer> Decide whether the video is AI-generated
or real by detecting unnatural parts. object distortion sudden blurring object trajectory redundant object object
merging object splitting background distortion object disappearance unexpected move. Does the image looks real/fake?
0123456789 , . : ; ! ? ( ) [ ] { } < > " ' - + = / \\ _ * & % $ # @ ^ ~ ` |
the a an of to in is it that for on with as was be by this are or from at which but not have has had were
"""


@lru_cache(maxsize=1)
def _bpe_vocab_and_merges(bpe_size: int = 2000) -> tuple[dict[str, int], list[tuple[str, str]]]:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=bpe_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def build_qwen_tokenizer():
    """A Qwen2-style tokenizer whose special tokens have Qwen's real ids (151643..151664)."""
    from transformers import AddedToken, Qwen2Tokenizer

    bpe_vocab, merges = _bpe_vocab_and_merges()
    vocab = dict(bpe_vocab)
    for i in range(len(vocab), QWEN_FIRST_SPECIAL_ID):  # dense ids so that any sampled id decodes
        vocab[f"<|fill_{i}|>"] = i
    for offset, token in enumerate(QWEN_SPECIAL_TOKENS):
        vocab[token] = QWEN_FIRST_SPECIAL_ID + offset
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token="<|im_end|>",
                         pad_token="<|endoftext|>", errors="replace", clean_up_tokenization_spaces=False)
    tok.add_special_tokens({"additional_special_tokens": [AddedToken(t, special=True, normalized=False)
                                                          for t in QWEN_SPECIAL_TOKENS]})
    for offset, token in enumerate(QWEN_SPECIAL_TOKENS):
        got = tok.convert_tokens_to_ids(token)
        if got != QWEN_FIRST_SPECIAL_ID + offset:
            raise RuntimeError(f"tokenizer put {token} at id {got}, not {QWEN_FIRST_SPECIAL_ID + offset}")
    tok.model_max_length = 32768
    return tok


def save_qwen_model(model_class, config, seed: int, out_dir: Path) -> None:
    """A model with Qwen2.5's tokenizer ids, random weights from `seed`, in bf16, saved with greedy decoding that
    stops at <|im_end|> or <|endoftext|> (as the real models' generation configs)."""
    import torch

    torch.manual_seed(seed)
    model = model_class(config).to(torch.bfloat16)
    model.generation_config.do_sample = False
    model.generation_config.eos_token_id = [QWEN_FIRST_SPECIAL_ID + 2, QWEN_FIRST_SPECIAL_ID]
    model.generation_config.pad_token_id = QWEN_FIRST_SPECIAL_ID
    model.save_pretrained(out_dir)


def build_qwen2_5_vl(out_dir: Path, hidden: int = 64, seed: int = 0) -> dict:
    """Qwen2.5-VL: 2-layer text model (head_dim 16), depth-2 vision tower; ~25 MB in bf16."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    heads = 4
    head_dim = hidden // heads
    half = head_dim // 2  # mrope_section must sum to head_dim / 2
    mrope = [half - 2 * (half // 3), half // 3, half // 3]
    text_config = {
        "vocab_size": QWEN_VOCAB_SIZE, "hidden_size": hidden, "intermediate_size": hidden * 2,
        "num_hidden_layers": 2, "num_attention_heads": heads, "num_key_value_heads": 2,
        "max_position_embeddings": 32768, "rope_theta": 1000000.0, "tie_word_embeddings": True,
        "rope_scaling": {"type": "mrope", "rope_type": "default", "mrope_section": mrope},
        "bos_token_id": QWEN_FIRST_SPECIAL_ID, "eos_token_id": QWEN_FIRST_SPECIAL_ID + 2,
        "pad_token_id": QWEN_FIRST_SPECIAL_ID,
    }
    vision_config = {
        "depth": 2, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "out_hidden_size": hidden,
        "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
        "fullatt_block_indexes": [1], "in_channels": 3,
    }
    config = Qwen2_5_VLConfig(
        text_config=text_config, vision_config=vision_config, tie_word_embeddings=True,
        image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
        bos_token_id=QWEN_FIRST_SPECIAL_ID, eos_token_id=QWEN_FIRST_SPECIAL_ID + 2,
        pad_token_id=QWEN_FIRST_SPECIAL_ID,
    )
    save_qwen_model(Qwen2_5_VLForConditionalGeneration, config, seed, out_dir)

    tok = build_qwen_tokenizer()
    image_processor = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=50176)
    video_processor = Qwen2VLVideoProcessor(min_pixels=784, max_pixels=3136)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                                    chat_template=QWEN2_VL_CHAT_TEMPLATE)
    processor.save_pretrained(out_dir)
    return {"model_type": "qwen2_5_vl", "template": "qwen2_5_vl"}


def build_videollama3(out_dir: Path, hidden: int = 64, seed: int = 0) -> dict:
    """VideoLLaMA3 in transformers' native format (VideoLlama3ForConditionalGeneration): 2-layer Qwen2 text model,
    2-layer SigLIP-NaViT vision tower, mlp2x_gelu projector; ~25 MB in bf16 with the tokenizer. Qwen2.5's tokenizer
    ids, as the real model: <|image_pad|>=151655 and <|video_pad|>=151656 are its image/video tokens
    (VideoLlama3Config defaults). Processor budgets are tiny (VideoLLaMA3's min/max tokens = 1/16): a 64x48 clip
    gets 4 tokens per frame."""
    from transformers import VideoLlama3Config, VideoLlama3ForConditionalGeneration

    from recipes.plugins.convert_videollama3 import build_processor

    text_config = {
        "model_type": "qwen2", "vocab_size": QWEN_VOCAB_SIZE, "hidden_size": hidden, "intermediate_size": hidden * 2,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 32768, "rope_theta": 1000000.0, "tie_word_embeddings": True,
        "bos_token_id": QWEN_FIRST_SPECIAL_ID, "eos_token_id": QWEN_FIRST_SPECIAL_ID + 2,
        "pad_token_id": QWEN_FIRST_SPECIAL_ID,
    }
    vision_config = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "patch_size": 14}
    config = VideoLlama3Config(text_config=text_config, vision_config=vision_config, image_token_id=151655,
                               video_token_id=151656, tie_word_embeddings=True)
    save_qwen_model(VideoLlama3ForConditionalGeneration, config, seed, out_dir)
    build_processor(build_qwen_tokenizer(), min_tokens=1, max_tokens=16).save_pretrained(out_dir)
    plugin = Path(__file__).resolve().parents[2] / "recipes" / "plugins" / "videollama3.py"
    return {"model_type": "videollama3", "template": "videollama3",
            "extra_swift_args": ["--external_plugins", str(plugin)]}


LLAVA_VOCAB_SIZE = 32064  # llava-hf/llava-1.5-7b-hf: Llama's 32,000 + <image> (32000) + <pad> (32001), padded to 32064
LLAVA_IMAGE_TOKEN_ID = 32000
LLAVA_CHAT_TEMPLATE = (  # llava-hf's: "USER: <image>\n<text> ASSISTANT: <answer>"
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' ' }}"
    "{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def build_llama_tokenizer():
    """A Llama-1/2-style tokenizer laid out like llava-hf's: <unk> 0, <s> 1, </s> 2, byte tokens <0x00>..<0xFF> at
    3..258, a small SentencePiece-style BPE (▁ word marker), never-produced fillers up to 31999, then <image> 32000 and
    <pad> 32001 (ms-swift's llava1_5_hf template writes `<s>`/`</s>` as text and looks `<image>` up by name)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AddedToken, LlamaTokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    corpus = _CORPUS + "\nUSER: ASSISTANT: USER: ASSISTANT:\n"
    bpe.train_from_iterator([corpus] * 4, trainer=trainers.BpeTrainer(vocab_size=1500, show_progress=False))
    model = json.loads(bpe.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
    for token in sorted(model["vocab"], key=model["vocab"].get):
        vocab.setdefault(token, len(vocab))
    for i in range(len(vocab), LLAVA_IMAGE_TOKEN_ID):  # dense ids so that any sampled id decodes
        vocab[f"<fill_{i}>"] = i
    vocab["<image>"] = LLAVA_IMAGE_TOKEN_ID
    vocab["<pad>"] = LLAVA_IMAGE_TOKEN_ID + 1
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = LlamaTokenizer(vocab=vocab, merges=merges, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                         pad_token="<pad>", add_prefix_space=True, legacy=False)
    tok.add_special_tokens({"additional_special_tokens": [AddedToken("<image>", special=True, normalized=False)]})
    wanted = (("<s>", 1), ("</s>", 2), ("<image>", LLAVA_IMAGE_TOKEN_ID), ("<pad>", LLAVA_IMAGE_TOKEN_ID + 1))
    for token, want in wanted:
        if tok.convert_tokens_to_ids(token) != want:
            raise RuntimeError(f"tokenizer put {token} at id {tok.convert_tokens_to_ids(token)}, not {want}")
    tok.model_max_length = 4096
    return tok


def build_llava1_5_hf(out_dir: Path, hidden: int = 64, seed: int = 0) -> dict:
    """LLaVA-1.5 in llava-hf format (LlavaForConditionalGeneration): 2-layer Llama text model, 2-layer CLIP vision
    tower on 56x56 inputs (patch 14: 16 image tokens), 2-layer GELU projector; llava-hf's token layout and prompt
    (`USER: <image>\\n... ASSISTANT:`); ~10 MB in bf16."""
    import torch
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    text_config = {
        "model_type": "llama", "vocab_size": LLAVA_VOCAB_SIZE, "hidden_size": hidden, "intermediate_size": hidden * 2,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": LLAVA_IMAGE_TOKEN_ID + 1,
        "tie_word_embeddings": False,
    }
    vision_config = {
        "model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "image_size": 56, "patch_size": 14, "projection_dim": 32,
    }
    config = LlavaConfig(text_config=text_config, vision_config=vision_config, image_token_index=LLAVA_IMAGE_TOKEN_ID,
                         projector_hidden_act="gelu", vision_feature_select_strategy="default",
                         vision_feature_layer=-2, image_seq_length=16, tie_word_embeddings=False,
                         pad_token_id=LLAVA_IMAGE_TOKEN_ID + 1)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).to(torch.bfloat16)
    model.generation_config.do_sample = False
    model.generation_config.bos_token_id = 1
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = LLAVA_IMAGE_TOKEN_ID + 1
    model.save_pretrained(out_dir)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56},
                                         do_center_crop=True, do_convert_rgb=True)
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=build_llama_tokenizer(), patch_size=14,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_CHAT_TEMPLATE)
    processor.save_pretrained(out_dir)
    return {"model_type": "llava1_5_hf", "template": "llava1_5_hf"}


BUILDERS: dict[str, Callable[..., dict]] = {
    "qwen2_5_vl": build_qwen2_5_vl,
    "videollama3": build_videollama3,
    "llava1_5_hf": build_llava1_5_hf,
}


def build(arch: str, out_dir: str | Path, **kwargs) -> Path:
    """Build tiny model `arch` into `out_dir` (created); returns the directory."""
    if arch not in BUILDERS:
        raise UserError(f"unknown architecture {arch!r}; known: {', '.join(sorted(BUILDERS))}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = BUILDERS[arch](out, **kwargs)
    extra = info.pop("extra_swift_args", [])  # e.g. the ms-swift plugin that registers the model type
    info = {"arch": arch, **info,
            "swift_args": ["--model_type", info["model_type"], "--template", info["template"], *extra]}
    (out / "tiny_model.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arch", help=f"architecture: {', '.join(sorted(BUILDERS))}")
    parser.add_argument("out_dir", help="directory to write (created)")
    parser.add_argument("--hidden", type=int, default=64, help="text hidden size (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    args = parser.parse_args(argv)
    if args.arch not in BUILDERS:  # check before the heavy imports
        raise UserError(f"unknown architecture {args.arch!r}; known: {', '.join(sorted(BUILDERS))}")
    out = build(args.arch, args.out_dir, hidden=args.hidden, seed=args.seed)
    info = json.loads((out / "tiny_model.json").read_text())
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"built tiny {args.arch} in {out} ({size / 1e6:.1f} MB); swift flags: {' '.join(info['swift_args'])}")
    return 0


if __name__ == "__main__":
    run_cli(main)
