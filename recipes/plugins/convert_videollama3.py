"""Convert a remote-code VideoLLaMA3 checkpoint (DAMO-NLP-SG/VideoLLaMA3-{2B,7B}: `model_type: videollama3_qwen2`,
`trust_remote_code=True`) to transformers' native format (`VideoLlama3ForConditionalGeneration`, `video_llama_3`),
which the ms-swift plugin recipes/plugins/videollama3.py trains and serves.

    huggingface-cli download DAMO-NLP-SG/VideoLLaMA3-7B --local-dir ckpt/VideoLLaMA3-7B
    python recipes/plugins/convert_videollama3.py ckpt/VideoLLaMA3-7B ckpt/VideoLLaMA3-7B-native

The two formats hold the same modules under different names, so the conversion is a key renaming; no tensor is
changed (shapes and values are copied as they are; `--dtype` casts if asked):

    model.vision_encoder.*                 -> model.vision_model.*        (SigLIP-NaViT: same submodule names)
    model.mm_projector.readout.{0,2}.*     -> model.projector.readout.{0,2}.*
    model.{embed_tokens,layers,norm}.*     -> model.language_model.{embed_tokens,layers,norm}.*
    lm_head.*                              -> lm_head.*

The config becomes VideoLlama3Config(text_config = the Qwen2 fields, vision_config = vision_encoder_config,
image_token_id/video_token_id = <|image_pad|>/<|video_pad|> of the Qwen2.5 tokenizer: the remote model used one
`<image>` token for both, whose embedding row is overwritten by vision features anyway). The processor is rebuilt as
the native VideoLlama3Processor with the remote preprocessor's token budgets (min_tokens/max_tokens), mean/std and
VideoLLaMA3's chat format. Every written tensor name and shape is checked against the native model built from the
converted config (on the meta device: no memory), so a missing or unexpected key fails the conversion.
Output is written to OUT_DIR.partial and renamed at the end: no half-written checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.errors import UserError, run_cli  # noqa: E402

REMOTE_MODEL_TYPE = "videollama3_qwen2"
IMAGE_TOKEN, VIDEO_TOKEN = "<|image_pad|>", "<|video_pad|>"
# (remote prefix, native prefix), first match wins.
KEY_RULES = (
    ("model.vision_encoder.", "model.vision_model."),
    ("model.mm_projector.", "model.projector."),
    ("model.embed_tokens.", "model.language_model.embed_tokens."),
    ("model.layers.", "model.language_model.layers."),
    ("model.norm.", "model.language_model.norm."),
    ("lm_head.", "lm_head."),
)
DROPPED_SUFFIXES = ("rotary_pos_emb.inv_freq",)  # non-persistent buffers some exports still carry
# Remote config keys that are not Qwen2 text-model fields.
MULTIMODAL_KEYS = {
    "vision_encoder", "vision_encoder_config", "mm_projector_type", "use_token_compression", "image_token_index",
    "mm_hidden_size", "auto_map", "architectures", "model_type", "transformers_version", "_name_or_path",
    "image_aspect_ratio", "tune_mm_mlp_adapter", "freeze_mm_mlp_adapter", "mm_vision_select_layer",
    "mm_use_im_start_end", "mm_use_im_patch_token", "tokenizer_model_max_length", "tokenizer_padding_side",
}
VISION_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_channels",
               "patch_size", "hidden_act", "layer_norm_eps", "attention_dropout")

# VideoLLaMA3's chat format (ChatML; no default system prompt; media before the text of a turn, each followed by a
# newline). The processor expands <|video_pad|> into `Time t:` + tokens per frame joined by `,` (what the remote
# template wrote as `Time t:<image>,...`) and <|image_pad|> into the image's tokens. The ms-swift template
# `videollama3` (recipes/plugins/videollama3.py) writes the same prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}<|image_pad|>\n"
    "{% elif content['type'] == 'video' or 'video' in content %}<|video_pad|>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Remote defaults (Videollama3ImageProcessor): min_tokens 16, max_tokens 16384 (in patch_size*merge_size units);
# image merge size 1, video merge size 2.
DEFAULT_MIN_TOKENS, DEFAULT_MAX_TOKENS = 16, 16384


def rename_key(key: str) -> str | None:
    """Native name of a remote-code parameter, or None for a dropped buffer. Raises UserError on an unknown key."""
    if key.endswith(DROPPED_SUFFIXES):
        return None
    for old, new in KEY_RULES:
        if key.startswith(old):
            return new + key[len(old):]
    raise UserError(f"unexpected parameter {key!r}: not a VideoLLaMA3 (videollama3_qwen2) weight")


def convert_config(remote: dict) -> dict:
    """Remote config.json dict -> native VideoLlama3Config dict."""
    if remote.get("model_type") != REMOTE_MODEL_TYPE:
        raise UserError(f"config.json: model_type is {remote.get('model_type')!r}, expected {REMOTE_MODEL_TYPE!r} "
                        "(a remote-code VideoLLaMA3 checkpoint)")
    vision = remote.get("vision_encoder_config")
    if not isinstance(vision, dict) or "hidden_size" not in vision:
        raise UserError("config.json: vision_encoder_config is missing (a checkpoint saved with a vision_encoder "
                        "path instead of its config cannot be converted)")
    if remote.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu":
        raise UserError(f"config.json: mm_projector_type {remote['mm_projector_type']!r} is not supported by the "
                        "native model (it has the mlp2x_gelu projector only)")
    text = {k: v for k, v in remote.items() if k not in MULTIMODAL_KEYS}
    text["model_type"] = "qwen2"
    dtype = text.get("torch_dtype") or text.get("dtype")
    vision_config = {k: vision[k] for k in VISION_KEYS if k in vision}
    vision_config["rope_parameters"] = {"rope_type": "axial", "rope_theta": 10000.0}  # the remote encoder's theta
    config = {
        "model_type": "video_llama_3",
        "architectures": ["VideoLlama3ForConditionalGeneration"],
        "text_config": text,
        "vision_config": vision_config,
        "image_token_id": None,  # filled from the tokenizer
        "video_token_id": None,
        "tie_word_embeddings": bool(remote.get("tie_word_embeddings", False)),
    }
    if dtype:
        config["dtype"] = dtype
    return config


def build_processor(tokenizer, *, min_tokens: int = DEFAULT_MIN_TOKENS, max_tokens: int = DEFAULT_MAX_TOKENS,
                    image_mean=None, image_std=None, patch_size: int = 14):
    """Native VideoLlama3Processor with VideoLLaMA3's token budgets: an image gets min_tokens..max_tokens patches
    (merge size 1), a video min_tokens..max_tokens merged tokens in all (merge size 2, split over its frames)."""
    from transformers import VideoLlama3ImageProcessor, VideoLlama3Processor, VideoLlama3VideoProcessor

    norm = {}
    if image_mean is not None:
        norm["image_mean"] = list(image_mean)
    if image_std is not None:
        norm["image_std"] = list(image_std)
    image_unit, video_unit = patch_size**2, (patch_size * 2) ** 2
    image_processor = VideoLlama3ImageProcessor(
        size={"shortest_edge": min_tokens * image_unit, "longest_edge": max_tokens * image_unit},
        patch_size=patch_size, merge_size=1, **norm)
    video_processor = VideoLlama3VideoProcessor(
        size={"shortest_edge": min_tokens * video_unit, "longest_edge": max_tokens * video_unit},
        patch_size=patch_size, merge_size=2, **norm)
    for token in (IMAGE_TOKEN, VIDEO_TOKEN):
        if tokenizer.convert_tokens_to_ids(token) in (None, tokenizer.unk_token_id):
            raise UserError(f"the tokenizer has no {token} token (expected a Qwen2/Qwen2.5 tokenizer)")
    return VideoLlama3Processor(image_processor=image_processor, video_processor=video_processor,
                                tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)


def _shards(src: Path) -> list[str]:
    index = src / "model.safetensors.index.json"
    if index.is_file():
        return sorted(set(json.loads(index.read_text())["weight_map"].values()))
    if (src / "model.safetensors").is_file():
        return ["model.safetensors"]
    if list(src.glob("*.bin")):
        raise UserError(f"{src}: only .bin weights found; this converter reads safetensors")
    raise UserError(f"{src}: no model.safetensors or model.safetensors.index.json")


def _check_against_native(config, written: dict[str, tuple]) -> None:
    """Every native parameter is written with its shape, and nothing else (lm_head may be tied)."""
    import torch
    from transformers import VideoLlama3ForConditionalGeneration

    with torch.device("meta"):
        model = VideoLlama3ForConditionalGeneration(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if config.tie_word_embeddings and "lm_head.weight" not in written:
        expected.pop("lm_head.weight", None)
    missing = sorted(set(expected) - set(written))
    unexpected = sorted(set(written) - set(expected))
    wrong = sorted(k for k in set(expected) & set(written) if expected[k] != written[k])
    if missing or unexpected or wrong:
        raise UserError(f"converted weights do not match the native model: missing {missing[:5]}, unexpected "
                        f"{unexpected[:5]}, wrong shapes {[(k, written[k], expected[k]) for k in wrong[:5]]}")


def convert(src: str | os.PathLike[str], out: str | os.PathLike[str], *, dtype: str | None = None,
            overwrite: bool = False) -> Path:
    """Convert the remote-code checkpoint directory `src` into a native checkpoint directory `out`."""
    src, out = Path(src), Path(out)
    if not (src / "config.json").is_file():
        raise UserError(f"{src}: no config.json (expected a downloaded DAMO-NLP-SG/VideoLLaMA3-* directory)")
    if out.exists() and not overwrite:
        raise UserError(f"{out} exists (pass --overwrite to replace it)")
    try:
        remote = json.loads((src / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{src / 'config.json'}: not valid JSON: {exc}") from None
    native = convert_config(remote)
    shards = _shards(src)

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, VideoLlama3Config

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(src), trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{src}: cannot load its tokenizer without remote code: {' '.join(str(exc).split())}") from None
    native["image_token_id"] = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    native["video_token_id"] = tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)
    config = VideoLlama3Config(**{k: v for k, v in native.items() if k != "model_type"})
    cast = getattr(torch, dtype) if dtype else None
    if dtype:
        config.dtype = dtype

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    written: dict[str, tuple] = {}
    weight_map: dict[str, str] = {}
    for n, shard in enumerate(shards, 1):
        tensors = {}
        with safe_open(str(src / shard), "pt") as fh:
            for key in fh.keys():
                new = rename_key(key)
                if new is None:
                    continue
                tensor = fh.get_tensor(key)
                tensors[new] = tensor.to(cast) if cast is not None and tensor.is_floating_point() else tensor
                written[new] = tuple(tensor.shape)
        name = "model.safetensors" if len(shards) == 1 else f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        save_file(tensors, str(tmp / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, name))
        del tensors
    _check_against_native(config, written)
    if len(shards) > 1:
        total = sum(os.path.getsize(tmp / f) for f in set(weight_map.values()))
        (tmp / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2))
    config.save_pretrained(str(tmp))

    pre = {}
    if (src / "preprocessor_config.json").is_file():
        pre = json.loads((src / "preprocessor_config.json").read_text(encoding="utf-8"))
    processor = build_processor(
        tokenizer, min_tokens=int(pre.get("min_tokens", DEFAULT_MIN_TOKENS)),
        max_tokens=int(pre.get("max_tokens", DEFAULT_MAX_TOKENS)), image_mean=pre.get("image_mean"),
        image_std=pre.get("image_std"), patch_size=int(pre.get("patch_size", 14)))
    processor.save_pretrained(str(tmp))
    if (src / "generation_config.json").is_file():
        shutil.copy2(src / "generation_config.json", tmp / "generation_config.json")
    (tmp / "conversion.json").write_text(json.dumps({
        "source": str(src.resolve()), "source_model_type": REMOTE_MODEL_TYPE, "tensors": len(written),
        "key_rules": [list(rule) for rule in KEY_RULES], "converter": "recipes/plugins/convert_videollama3.py",
    }, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="remote-code checkpoint directory (config.json model_type videollama3_qwen2)")
    parser.add_argument("out", help="native checkpoint directory to write")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], help="cast floating tensors")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    out = convert(args.src, args.out, dtype=args.dtype, overwrite=args.overwrite)
    print(f"converted {args.src} -> {out} (load with: swift sft --external_plugins recipes/plugins/videollama3.py "
          f"--model {out} --model_type videollama3 --template videollama3 ...)")
    return 0


if __name__ == "__main__":
    run_cli(main)
