"""VideoLLaMA3 through the ms-swift plugin recipes/plugins/videollama3.py, on CPU with a tiny native VideoLLaMA3.

- The key check: for the same mp4 clip, the plugin's template and transformers' own VideoLlama3Processor give the
  same frames, timestamps (`Time t:`), video tokens per frame after token compression, and input_ids.
- Labels cover the assistant's reply only; the training path (vision features merged in the template's _post_encode)
  computes the same loss as the model's own forward, and a media-free batch still reaches the vision tower.
- The remote-code checkpoint converter renames a state dict laid out like DAMO-NLP-SG/VideoLLaMA3-7B's into one
  that loads strictly into VideoLlama3ForConditionalGeneration; the plugin refuses the remote format with the way out.
- The recipes themselves: recipes/videollama3_full.sh (DeepSpeed ZeRO-3 through torchrun) and
  recipes/videollama3_lora.sh for 2 steps, each followed by recipes/infer.sh on the checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.jsonl import write_jsonl
from common.swift import CPU_INFER_FLAGS, CPU_TRAIN_FLAGS, run_recipe
from prompts.deeptrace import REAL_ANSWER, fake_answer, question
from recipes import lib
from tests.support.media import write_mp4, write_png
from tests.support.swift_results import assert_results_follow_inputs
from tests.support.tiny_models import build_qwen_tokenizer

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
PLUGIN = RECIPES / "plugins" / "videollama3.py"
CONVERTER = RECIPES / "plugins" / "convert_videollama3.py"
VIDEO_PAD, IMAGE_PAD = "<|video_pad|>", "<|image_pad|>"
TEMPLATE_ENV = ("FPS", "FPS_MAX_FRAMES", "FPS_MIN_FRAMES", "VIDEO_TOTAL_PIXELS", "VIDEO_MAX_PIXELS",
                "VIDEO_MIN_PIXELS", "MAX_PIXELS", "MIN_PIXELS")


# --- helpers ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def swift_vl3(tiny_videollama3: Path):
    """The plugin imported as `--external_plugins` does; returns a factory of (processor, template)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MODELSCOPE_OFFLINE", "1")
    from swift.utils import import_external_file

    import_external_file(str(PLUGIN))
    from swift import get_model_processor, get_template

    def make(env: dict[str, str] | None = None, mode: str = "train", model_dir: Path = tiny_videollama3,
             load_model: bool = False):
        saved = {k: os.environ.pop(k, None) for k in TEMPLATE_ENV}  # the template reads its env at creation
        os.environ.update(env or {})
        try:
            model, processor = get_model_processor(str(model_dir), load_model=load_model, torch_dtype=torch.float32)
            template = get_template(processor, template_type="videollama3")
        finally:
            for key in TEMPLATE_ENV:
                os.environ.pop(key, None)
                if saved[key] is not None:
                    os.environ[key] = saved[key]
        template.set_mode(mode)
        if load_model:
            template.model = model
        return model, processor, template

    return make


def frames_of(text: str) -> list[tuple[str, int]]:
    """(timestamp, video tokens) per frame of a decoded VideoLLaMA3 prompt."""
    block = re.search(r"((?:,?Time \d+\.\ds:(?:<\|video_pad\|>)+)+)\n", text)
    assert block, text
    return [(t, len(pads) // len(VIDEO_PAD))
            for t, pads in re.findall(r"Time (\d+\.\d)s:((?:<\|video_pad\|>)+)", block.group(1))]


def last_checkpoint(output_dir: Path) -> Path:
    ckpts = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert ckpts, f"no checkpoint in {output_dir}"
    return ckpts[-1]


def first_tensor(path: Path, name: str) -> torch.Tensor:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        return fh.get_tensor(name).float()


# --- the tiny model ---------------------------------------------------------------------------------------------

def test_tiny_videollama3_is_native_with_qwen_ids(tiny_videollama3: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    assert sum(f.stat().st_size for f in tiny_videollama3.iterdir()) <= 30 * 1024 * 1024
    processor = AutoProcessor.from_pretrained(tiny_videollama3)
    model = AutoModelForImageTextToText.from_pretrained(tiny_videollama3)
    assert type(processor).__name__ == "VideoLlama3Processor"
    assert type(model).__name__ == "VideoLlama3ForConditionalGeneration"
    tok = processor.tokenizer
    ids = tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>", IMAGE_PAD, VIDEO_PAD])
    assert ids == [151643, 151644, 151645, 151655, 151656]
    # The image/video tokens the model scatters features into are the ones the processor writes.
    assert (model.config.image_token_id, model.config.video_token_id) == (151655, 151656)
    assert (processor.image_token_id, processor.video_token_id) == (151655, 151656)
    assert (processor.image_processor.merge_size, processor.video_processor.merge_size) == (1, 2)
    message = {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "hi"}]}
    text = processor.apply_chat_template([message], add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\n<|video_pad|>\nhi<|im_end|>\n<|im_start|>assistant\n"
    info = json.loads((tiny_videollama3 / "tiny_model.json").read_text())
    assert info["swift_args"] == ["--model_type", "videollama3", "--template", "videollama3",
                                  "--external_plugins", str(PLUGIN)]


# --- frames: VideoLLaMA3's sampler; template == transformers' VideoLlama3Processor ----------------------------------

def videollama3_frames(path: Path, fps: float, max_frames: int) -> list[tuple[int, float]]:
    """(source frame, timestamp) as VideoLLaMA3 samples a clip, computed independently of the plugin: libavfilter's
    own `fps=FPS:round=down` filter (PyAV's bundled FFmpeg; VideoLLaMA3 runs the same filter through the ffmpeg
    CLI), timestamps k / FPS, then VideoLLaMA3's cap np.linspace(0, n - 1, max_frames, dtype=int)."""
    import av
    import numpy as np

    from tests.support.media import frame_index

    out: list[int] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        graph = av.filter.Graph()
        source, sink = graph.add_buffer(template=stream), graph.add("buffersink")
        fps_filter = graph.add("fps", f"fps={fps}:round=down")
        source.link_to(fps_filter)
        fps_filter.link_to(sink)
        graph.configure()

        def drain() -> None:
            while True:
                try:
                    out.append(frame_index(graph.pull().to_ndarray(format="rgb24")))
                except (av.error.BlockingIOError, av.error.EOFError):
                    return

        for frame in container.decode(stream):
            graph.push(frame)
            drain()
        graph.push(None)
        drain()
    pairs = [(index, k / fps) for k, index in enumerate(out)]
    if len(pairs) > max_frames:
        pairs = [pairs[i] for i in np.linspace(0, len(pairs) - 1, max_frames, dtype=int)]
    return pairs


CLIPS = {  # awkward lengths: shorter than one sampling interval, not a whole number of intervals, long
    "0.4s": {"seconds": 0.4, "fps": 10, "frames": [(3, 0.0)]},  # ffmpeg: none (VideoLLaMA3 fails); plugin: slot 0
    "2.9s": {"seconds": 2.9, "fps": 10, "frames": [(4, 0.0), (9, 0.5), (14, 1.0), (19, 1.5), (24, 2.0)]},
    "2.9s@24": {"seconds": 2.9, "fps": 24, "frames": None},
    "200s": {"seconds": 200, "fps": 3, "frames": None},  # 400 slots at fps 2 -> 180 kept
}


@pytest.mark.parametrize("name", list(CLIPS))
def test_sampler_is_videollama3s(tmp_path: Path, name: str) -> None:
    """The plugin picks the frames and timestamps VideoLLaMA3's own loader picks (libavfilter's fps filter)."""
    import decord

    from recipes.plugins.videollama3 import sample_videollama3
    from tests.support.media import frame_index, write_indexed_mp4

    clip = CLIPS[name]
    path = write_indexed_mp4(tmp_path / f"{name}.mp4", clip["seconds"], clip["fps"])
    reader = decord.VideoReader(str(path))
    times = reader.get_frame_timestamp(range(len(reader)))
    indices, slots = sample_videollama3(times[:, 0].tolist(), float(times[-1, 1]), 2.0, 180)
    ours = [(frame_index(f), s / 2.0) for f, s in zip(reader.get_batch(indices).asnumpy(), slots, strict=True)]
    expected = videollama3_frames(path, 2, 180)
    if name == "0.4s":
        assert expected == []  # shorter than 1 / FPS: VideoLLaMA3's ffmpeg call yields no frame
        assert ours == clip["frames"]  # the plugin keeps the first slot (the last frame shown before 0.5 s)
        return
    assert ours == expected
    if clip["frames"]:
        assert ours == clip["frames"]  # each slot shows the last frame before the next one, labelled k / FPS
    if name == "200s":
        assert len(ours) == 180 and ours[0] == (1, 0.0) and ours[-1] == (599, 199.5)


@pytest.mark.parametrize("case", [
    {"clip": "0.4s", "env": {}, "times": ["0.0"]},
    {"clip": "2.9s", "env": {}, "times": ["0.0", "0.5", "1.0", "1.5", "2.0"]},
    {"clip": "200s", "env": {}, "times": None},
    # FPS=4 capped by FPS_MAX_FRAMES=5; per-frame pixel cap.
    {"clip": "2.9s", "env": {"FPS": "4", "FPS_MAX_FRAMES": "5", "VIDEO_MAX_PIXELS": "1568"},
     "times": ["0.0", "0.5", "1.2", "1.8", "2.5"]},
], ids=["0.4s", "2.9s", "200s", "fps4_max5_pixels"])
def test_template_matches_videollama3_processor(swift_vl3, tmp_path: Path, case: dict) -> None:
    """For VideoLLaMA3's frames of a clip, the plugin's template and transformers' VideoLlama3Processor give the same
    timestamps, video tokens per frame after compression, pixels, and input_ids token for token; the question follows
    the video's newline without the data's leading space (`\\nDecide`, as VideoLLaMA3's loader strips it)."""
    import decord
    from transformers.video_utils import VideoMetadata

    from recipes.plugins.videollama3 import DEFAULT_VIDEO_TOTAL_PIXELS
    from tests.support.media import write_indexed_mp4

    _, processor, template = swift_vl3(case["env"], mode="transformers")
    fps, max_frames = float(case["env"].get("FPS", 2)), int(case["env"].get("FPS_MAX_FRAMES", 180))
    clip = CLIPS[case["clip"]]
    path = write_indexed_mp4(tmp_path / "clip.mp4", clip["seconds"], clip["fps"])
    encoded = template.encode({"messages": [{"role": "user", "content": "<video> Decide whether it is real. "}],
                               "videos": [str(path)]})

    expected = videollama3_frames(path, fps, max_frames) or [(3, 0.0)]  # 0.4 s: the plugin's one frame
    frames = decord.VideoReader(str(path)).get_batch([i for i, _ in expected]).asnumpy()
    metadata = VideoMetadata(total_num_frames=len(frames), fps=fps,
                             frames_indices=[round(t * fps) for _, t in expected])
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Decide whether it is real."}]}],
        add_generation_prompt=True, tokenize=False)
    per_frame = int(case["env"].get("VIDEO_MAX_PIXELS", 0)) * len(frames) or DEFAULT_VIDEO_TOTAL_PIXELS
    size = {"shortest_edge": int(case["env"].get("VIDEO_MIN_PIXELS", processor.video_processor.size["shortest_edge"])),
            "longest_edge": min(DEFAULT_VIDEO_TOTAL_PIXELS, per_frame)}
    reference = processor(text=[prompt], videos=[frames], video_metadata=[metadata], do_sample_frames=False,
                          size=size, return_tensors="pt")

    tok = processor.tokenizer
    text = tok.decode(encoded["input_ids"])
    ours, theirs = frames_of(text), frames_of(tok.decode(reference["input_ids"][0]))
    assert [t for t, _ in ours] == [t for t, _ in theirs] == [f"{t:.1f}" for _, t in expected]
    if case["times"]:
        assert [t for t, _ in ours] == case["times"]
    assert [n for _, n in ours] == [n for _, n in theirs]  # same video tokens per frame
    assert encoded["input_ids"] == reference["input_ids"][0].tolist()  # the whole prompt, token for token
    assert "<|video_pad|>\nDecide whether it is real.<|im_end|>" in text
    for key in ("pixel_values_videos", "video_grid_thw", "video_merge_sizes", "video_compression_mask"):
        assert torch.equal(encoded[key], reference[key]), key
    grid = encoded["video_grid_thw"][0].tolist()
    assert grid[0] == len(expected)
    assert sum(n for _, n in ours) == int(encoded["video_compression_mask"].sum())


def test_template_matches_processor_on_an_image(swift_vl3, tmp_path: Path) -> None:
    from PIL import Image

    _, processor, template = swift_vl3(mode="transformers")
    image = write_png(tmp_path / "img.png", 1)
    encoded = template.encode({"messages": [{"role": "user", "content": "<image>Is it real?"}],
                               "images": [str(image)]})
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is it real?"}]}],
        add_generation_prompt=True, tokenize=False)
    reference = processor(text=[prompt], images=[Image.open(image).convert("RGB")], return_tensors="pt")
    assert encoded["input_ids"] == reference["input_ids"][0].tolist()
    for key in ("pixel_values", "image_grid_thw", "image_merge_sizes"):
        assert torch.equal(encoded[key], reference[key]), key


def test_labels_cover_only_the_assistant_reply(swift_vl3, tmp_path: Path) -> None:
    _, processor, template = swift_vl3()
    clip = write_mp4(tmp_path / "clip.mp4", 2)
    answer = fake_answer([4, 6, 30, 40], 0.5, "a hand melts.")
    encoded = template.encode({"messages": [{"role": "user", "content": question()},
                                            {"role": "assistant", "content": answer}], "videos": [str(clip)]})
    ids, labels = encoded["input_ids"], encoded["labels"]
    assert len(ids) == len(labels)
    tok = processor.tokenizer
    first = next(i for i, label in enumerate(labels) if label != -100)
    assert all(label == -100 for label in labels[:first])
    assert labels[first:] == ids[first:]  # one contiguous labelled span: the reply and its end-of-turn
    assert tok.decode(labels[first:]) == answer + "<|im_end|>\n"
    assert tok.decode(ids[:first]).endswith("<|im_start|>assistant\n")
    assert ids.count(151656) == int(encoded["video_compression_mask"].sum()) > 0
    assert all(label == -100 for i, label in zip(ids, labels, strict=True) if i == 151656)


def test_training_path_equals_model_forward_and_reaches_the_vision_tower(swift_vl3, tmp_path: Path) -> None:
    model, processor, template = swift_vl3(load_model=True)
    clip, image = write_mp4(tmp_path / "clip.mp4", 4), write_png(tmp_path / "img.png", 2)
    rows = [{"messages": [{"role": "user", "content": "<video>Real?"}, {"role": "assistant", "content": "FAKE."}],
             "videos": [str(clip)]},
            {"messages": [{"role": "user", "content": "<image>Real?"}, {"role": "assistant", "content": "REAL."}],
             "images": [str(image)]}]
    batch = template.data_collator([template.encode(r) for r in rows])
    assert batch["input_ids"].shape[0] == 2 and batch["video_compression_mask"].dtype == torch.bool
    native = model(**{k: v for k, v in batch.items() if k != "loss_scale"}).loss  # the model merges features itself
    embeds = template._post_encode(model, batch)["inputs_embeds"]
    ours = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    assert torch.isfinite(ours) and torch.allclose(ours, native)
    ours.backward()
    vision = model.model.vision_model.encoder.layers[0].self_attn.q_proj.weight
    assert vision.grad is not None and vision.grad.abs().sum() > 0
    # A batch without media still runs the vision tower (x0): DeepSpeed ZeRO-3 / DDP need it on every rank.
    model.zero_grad()
    text_only = template.data_collator([template.encode(
        {"messages": [{"role": "user", "content": "Real?"}, {"role": "assistant", "content": "REAL."}]})])
    embeds = template._post_encode(model, text_only)["inputs_embeds"]
    model(inputs_embeds=embeds, attention_mask=text_only["attention_mask"], labels=text_only["labels"]).loss.backward()
    assert vision.grad is not None and vision.grad.abs().sum() == 0


def test_inference_path_reproduces_the_training_path(swift_vl3, tmp_path: Path) -> None:
    """What `swift infer` computes equals what training optimised: the train-mode template (features merged in
    _post_encode) and the infer-mode one (raw pixel_values_videos etc. merged by the model's own forward) give the
    same prompt logits, and TransformersEngine's batched, left-padded greedy generation (as recipes/infer.sh runs
    it) starts with the train path's argmax at the first answer position, with the same log-probabilities."""
    from swift.infer_engine import InferRequest, RequestConfig, TransformersEngine

    model, processor, train_t = swift_vl3(load_model=True)
    model.eval()
    _, _, infer_t = swift_vl3(mode="transformers")
    infer_t.model = model
    rows = [{"messages": [{"role": "user", "content": "<video>Real?"}, {"role": "assistant", "content": "FAKE."}],
             "videos": [str(write_mp4(tmp_path / f"clip{i}.mp4", i, frames=frames))]}
            for i, frames in ((3, 8), (5, 12))]  # different lengths -> padding in the batch
    first = []
    for row in rows:
        trained = train_t.data_collator([train_t.encode(row)])
        prompt = infer_t.data_collator([infer_t.encode({**row, "messages": row["messages"][:1]})])
        n = prompt["input_ids"].shape[1]
        assert trained["input_ids"][0, :n].tolist() == prompt["input_ids"][0].tolist()
        assert int(trained["labels"][0, n]) != -100 and int(trained["labels"][0, n - 1]) == -100
        with torch.no_grad():
            embeds = train_t._post_encode(model, trained)["inputs_embeds"]
            train_logits = model(inputs_embeds=embeds, attention_mask=trained["attention_mask"]).logits[0, :n]
            assert set(infer_t._post_encode(model, prompt)) >= {"pixel_values_videos", "video_compression_mask"}
            infer_logits = model(**{k: v for k, v in prompt.items() if k != "loss_scale"}).logits[0]
        torch.testing.assert_close(infer_logits, train_logits, rtol=1e-4, atol=1e-4)
        first.append(train_logits[-1].log_softmax(-1))
    engine = TransformersEngine(model, template=infer_t, max_batch_size=len(rows))
    results = engine.infer([InferRequest(messages=r["messages"][:1], videos=r["videos"]) for r in rows],
                           RequestConfig(max_tokens=1, temperature=0, logprobs=True, top_logprobs=1))
    for logprobs, result in zip(first, results, strict=True):
        step = result.choices[0].logprobs["content"][0]
        assert step["token"] == processor.tokenizer.decode(int(logprobs.argmax()))
        assert abs(step["logprob"] - float(logprobs.max())) < 1e-3


# --- remote-code checkpoint -> native ---------------------------------------------------------------------------

def remote_checkpoint(root: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A tiny checkpoint laid out like DAMO-NLP-SG/VideoLLaMA3-7B (videollama3_qwen2; names from its remote code:
    Videollama3Qwen2Model + Videollama3VisionEncoderModel + MlpGeluProjector), in two safetensors shards."""
    from safetensors.torch import save_file
    from transformers import AddedToken

    h, inter, layers, heads, kv, vocab = 64, 128, 2, 4, 2, 151936
    hv, inter_v, layers_v = 32, 64, 2
    kvd = h // heads * kv
    shapes = {"model.embed_tokens.weight": (vocab, h), "model.norm.weight": (h,), "lm_head.weight": (vocab, h)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({p + "self_attn.q_proj.weight": (h, h), p + "self_attn.q_proj.bias": (h,),
                       p + "self_attn.k_proj.weight": (kvd, h), p + "self_attn.k_proj.bias": (kvd,),
                       p + "self_attn.v_proj.weight": (kvd, h), p + "self_attn.v_proj.bias": (kvd,),
                       p + "self_attn.o_proj.weight": (h, h), p + "mlp.gate_proj.weight": (inter, h),
                       p + "mlp.up_proj.weight": (inter, h), p + "mlp.down_proj.weight": (h, inter),
                       p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,)})
    v = "model.vision_encoder."
    shapes.update({v + "embeddings.patch_embedding.weight": (hv, 3, 14, 14), v + "embeddings.patch_embedding.bias":
                   (hv,), v + "post_layernorm.weight": (hv,), v + "post_layernorm.bias": (hv,)})
    for i in range(layers_v):
        p = f"{v}encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes.update({p + f"self_attn.{proj}.weight": (hv, hv), p + f"self_attn.{proj}.bias": (hv,)})
        shapes.update({p + "layer_norm1.weight": (hv,), p + "layer_norm1.bias": (hv,), p + "layer_norm2.weight": (hv,),
                       p + "layer_norm2.bias": (hv,), p + "mlp.fc1.weight": (inter_v, hv), p + "mlp.fc1.bias":
                       (inter_v,), p + "mlp.fc2.weight": (hv, inter_v), p + "mlp.fc2.bias": (hv,)})
    shapes.update({"model.mm_projector.readout.0.weight": (h, hv), "model.mm_projector.readout.0.bias": (h,),
                   "model.mm_projector.readout.2.weight": (h, h), "model.mm_projector.readout.2.bias": (h,)})
    gen = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(s, generator=gen) * 0.02).to(torch.bfloat16) for k, s in shapes.items()}

    src = root / "VideoLLaMA3-tiny"
    src.mkdir()
    names = sorted(state)
    half = len(names) // 2
    weight_map = {}
    for n, part in enumerate((names[:half], names[half:]), 1):
        shard = f"model-{n:05d}-of-00002.safetensors"
        save_file({k: state[k] for k in part}, str(src / shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, shard))
    (src / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    config = {
        "architectures": ["Videollama3Qwen2ForCausalLM"], "model_type": "videollama3_qwen2",
        "auto_map": {"AutoConfig": "configuration_videollama3.Videollama3Qwen2Config",
                     "AutoModelForCausalLM": "modeling_videollama3.Videollama3Qwen2ForCausalLM"},
        "vocab_size": vocab, "hidden_size": h, "intermediate_size": inter, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv, "max_position_embeddings": 32768,
        "rope_theta": 1000000.0, "rope_scaling": None, "rms_norm_eps": 1e-6, "hidden_act": "silu",
        "tie_word_embeddings": False, "use_sliding_window": False, "sliding_window": 32768,
        "max_window_layers": 28, "torch_dtype": "bfloat16", "use_cache": True, "bos_token_id": 151643,
        "eos_token_id": 151645, "initializer_range": 0.02, "attention_dropout": 0.0,
        "vision_encoder": None, "mm_projector_type": "mlp2x_gelu", "use_token_compression": True,
        "image_token_index": 151665, "transformers_version": "4.46.3",
        "vision_encoder_config": {"model_type": "videollama3_vision_encoder", "hidden_size": hv,
                                  "intermediate_size": inter_v, "num_hidden_layers": layers_v,
                                  "num_attention_heads": 2, "num_channels": 3, "patch_size": 14,
                                  "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6,
                                  "attention_dropout": 0.0},
    }
    (src / "config.json").write_text(json.dumps(config, indent=2))
    tok = build_qwen_tokenizer()
    tok.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    assert tok.convert_tokens_to_ids("<image>") == 151665
    tok.save_pretrained(str(src))
    (src / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Videollama3ImageProcessor", "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5], "min_tokens": 1, "max_tokens": 16, "patch_size": 14}))
    return src, state


def test_converter_renames_remote_checkpoint_to_native(swift_vl3, tmp_path: Path) -> None:
    from transformers import AutoProcessor, VideoLlama3ForConditionalGeneration

    from recipes.plugins.convert_videollama3 import convert, rename_key

    src, state = remote_checkpoint(tmp_path)
    # The plugin refuses the remote-code format, naming the converter (the model type is matched by architecture).
    with pytest.raises(ValueError, match="convert_videollama3.py"):
        swift_vl3(model_dir=src)
    out = convert(src, tmp_path / "native")
    assert not (tmp_path / "native.partial").exists()
    model, info = VideoLlama3ForConditionalGeneration.from_pretrained(out, output_loading_info=True)
    assert not any(info.values()), info  # strict: no missing, unexpected or mismatched key
    native = model.state_dict()
    for remote_key, native_key in [
        ("model.vision_encoder.encoder.layers.1.self_attn.out_proj.weight",
         "model.vision_model.encoder.layers.1.self_attn.out_proj.weight"),
        ("model.vision_encoder.embeddings.patch_embedding.weight",
         "model.vision_model.embeddings.patch_embedding.weight"),
        ("model.mm_projector.readout.2.bias", "model.projector.readout.2.bias"),
        ("model.layers.0.mlp.down_proj.weight", "model.language_model.layers.0.mlp.down_proj.weight"),
        ("model.embed_tokens.weight", "model.language_model.embed_tokens.weight"),
        ("lm_head.weight", "lm_head.weight"),
    ]:
        assert rename_key(remote_key) == native_key
        assert torch.equal(native[native_key], state[remote_key]), native_key
    assert rename_key("model.vision_encoder.encoder.rotary_pos_emb.inv_freq") is None
    assert (model.config.image_token_id, model.config.video_token_id) == (151655, 151656)
    assert model.config.text_config.rope_parameters["rope_theta"] == 1000000.0
    assert not model.config.tie_word_embeddings
    processor = AutoProcessor.from_pretrained(out)
    assert list(processor.image_processor.image_mean) == [0.5, 0.5, 0.5]
    assert processor.video_processor.size["longest_edge"] == 16 * 28 * 28
    # ms-swift picks the plugin's model type by architecture and trains on the converted checkpoint.
    model, _, template = swift_vl3(model_dir=out, load_model=True)
    assert model.model_meta.model_type == "videollama3"
    clip = write_mp4(tmp_path / "clip.mp4", 1)
    batch = template.data_collator([template.encode({
        "messages": [{"role": "user", "content": "<video>Real?"}, {"role": "assistant", "content": REAL_ANSWER}],
        "videos": [str(clip)]})])
    embeds = template._post_encode(model, batch)["inputs_embeds"]
    assert torch.isfinite(model(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                                labels=batch["labels"]).loss)


def test_converter_cli_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    for src, message in [(tmp_path / "nope", "no config.json"),
                         (tmp_path / "src", "model_type is 'qwen2_5_vl', expected 'videollama3_qwen2'")]:
        proc = subprocess.run([sys.executable, str(CONVERTER), str(src), str(tmp_path / "out")],
                              capture_output=True, text=True)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("convert_videollama3.py: error: ") and message in lines[0]
    assert not (tmp_path / "out").exists()


# --- the recipes, executed --------------------------------------------------------------------------------------

def test_configs_hold_the_paper_settings() -> None:
    env, full = lib.load_config("videollama3_full")
    assert (env["FPS"], env["FPS_MAX_FRAMES"], env["GLOBAL_BATCH_SIZE"]) == ("2", "180", "8")  # paper Table 4
    assert (full["tuner_type"], full["per_device_train_batch_size"], full["learning_rate"],
            full["num_train_epochs"], full["optim"]) == ("full", 1, 1e-5, 1, "adamw_torch")
    assert full["freeze_vit"] is False and full["freeze_aligner"] is False and full["freeze_llm"] is False
    assert (full["model_type"], full["template"]) == ("videollama3", "videollama3")
    lora_env, lora = lib.load_config("videollama3_lora")
    assert lora["tuner_type"] == "lora" and lora_env == env
    for key in ("model_type", "template", "external_plugins", "per_device_train_batch_size", "num_train_epochs",
                "optim", "max_length", "adam_beta2", "weight_decay", "lr_scheduler_type", "warmup_ratio"):
        assert lora[key] == full[key], key
    for config in (full, lora):
        assert not any(k in config for k in ("model", "dataset", "output_dir", "deepspeed"))
    # The video token budget: the configs' and the plugin's default agree (inference without the training config).
    from recipes.plugins.videollama3 import DEFAULT_VIDEO_TOTAL_PIXELS

    assert int(env["VIDEO_TOTAL_PIXELS"]) == int(lora_env["VIDEO_TOTAL_PIXELS"]) == DEFAULT_VIDEO_TOTAL_PIXELS
    assert DEFAULT_VIDEO_TOTAL_PIXELS == 10240 * 28 * 28  # VideoLLaMA3 stage 4 --mm_max_length 10240


@pytest.fixture(scope="module")
def deeptrace_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA/{train,val}.jsonl as the converter writes them (variant full), on real 64x48 H.264 clips."""
    root = tmp_path_factory.mktemp("vl3data")
    traces = [([4, 6, 30, 40], 0.5, "a hand melts."), None, ([10, 2, 60, 20], 1.0, None)]
    rows = []
    for i, trace in enumerate(traces):
        clip = write_mp4(root / "media" / f"v{i}.mp4", i)
        answer = REAL_ANSWER if trace is None else fake_answer(*trace)
        rows.append({"messages": [{"role": "user", "content": question()}, {"role": "assistant", "content": answer}],
                     "videos": [str(clip)], "meta": {"video_id": f"v{i}"}})
    write_jsonl(root / "train.jsonl", rows)
    write_jsonl(root / "val.jsonl", rows[:2])
    return root


STEPS = ["--max_steps", "2", "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1",
         "--max_length", "2048"]





@pytest.mark.e2e
def test_full_recipe_zero3_then_infer(tiny_videollama3: Path, deeptrace_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "full"
    env = {"MODEL": str(tiny_videollama3), "DATA": str(deeptrace_data), "OUTPUT_DIR": str(out),
           "NPROC_PER_NODE": "1", "MASTER_PORT": str(29700 + os.getpid() % 200), "DEEPSPEED": "zero3", "FPS": None,
           "GLOBAL_BATCH_SIZE": "2"}
    log = tmp_path / "full.log"
    # Run from elsewhere: the script's absolute plugin path must win over the config's repo-relative one.
    run_recipe(RECIPES / "videollama3_full.sh", [*STEPS, *CPU_TRAIN_FLAGS, "--learning_rate", "1e-3"], log=log,
               env=env, cwd=tmp_path)
    text = log.read_text()
    assert "-m torch.distributed.run --nproc_per_node 1" in text
    assert f"Successfully imported external_plugins: ['{PLUGIN}']" in text
    assert "Setting fps: 2.0." in text and "Setting fps_max_frames: 4." in text  # config ENV; CPU_ENV's cap wins
    ckpt = last_checkpoint(out)
    args = json.loads((ckpt / "args.json").read_text())
    assert (args["model_type"], args["template"], args["tuner_type"]) == ("videollama3", "videollama3", "full")
    assert (args["freeze_vit"], args["freeze_aligner"], args["freeze_llm"]) == (False, False, False)
    assert args["deepspeed"]["zero_optimization"]["stage"] == 3 and args["per_device_train_batch_size"] == 1
    assert (args["gradient_accumulation_steps"], args["vit_lr"], args["aligner_lr"]) == (2, 2e-6, 1e-5)
    assert "vit_lr: 2e-06, aligner_lr: 1e-05, llm_lr: 0.001" in text  # ms-swift's per-part learning rates
    name = "model.vision_model.encoder.layers.0.self_attn.q_proj.weight"  # full means full: the ViT moved too
    assert not torch.equal(first_tensor(tiny_videollama3 / "model.safetensors", name),
                           first_tensor(ckpt / "model.safetensors", name))

    # infer.sh on the output dir: model type, template and plugin come from the checkpoint's args.json.
    log = tmp_path / "infer_full.log"
    run_recipe(RECIPES / "infer.sh", [*CPU_INFER_FLAGS, "--max_new_tokens", "8"], log=log,
               env={"CKPT": str(out), "DATA": str(deeptrace_data), "SPLIT": "val", "FPS": None})
    result = Path(log.read_text().strip().splitlines()[-1])
    assert result == ckpt / "infer" / "full-val.jsonl"
    assert_results_follow_inputs(result, deeptrace_data / "val.jsonl")


@pytest.mark.e2e
def test_lora_recipe_then_infer_adapter(tiny_videollama3: Path, deeptrace_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "lora"
    env = {"MODEL": str(tiny_videollama3), "DATA": str(deeptrace_data), "OUTPUT_DIR": str(out),
           "NPROC_PER_NODE": "1", "MASTER_PORT": str(29500 + os.getpid() % 200), "DEEPSPEED": "none",
           "GLOBAL_BATCH_SIZE": "1"}
    log = tmp_path / "lora.log"
    run_recipe(RECIPES / "videollama3_lora.sh", [*STEPS, *CPU_TRAIN_FLAGS, "--learning_rate", "1e-3",
                                                  "--eval_strategy", "no"], log=log, env=env)  # eval: full test
    ckpt = last_checkpoint(out)
    args = json.loads((ckpt / "args.json").read_text())
    assert args["tuner_type"] == "lora" and args["learning_rate"] == 1e-3 and args["deepspeed"] is None
    adapter = json.loads((ckpt / "adapter_config.json").read_text())
    targets = adapter["target_modules"]
    targets = targets if isinstance(targets, str) else "|".join(targets)
    assert "vision_model" not in targets and "projector" not in targets  # LoRA on the LLM only
    result = tmp_path / "lora.jsonl"
    log = tmp_path / "infer_lora.log"
    run_recipe(RECIPES / "infer.sh", [*CPU_INFER_FLAGS, "--max_new_tokens", "8"], log=log,
               env={"CKPT": str(ckpt), "DATA": str(deeptrace_data), "SPLIT": "val", "RESULT_PATH": str(result)})
    assert "--adapters" in log.read_text()
    assert_results_follow_inputs(result, deeptrace_data / "val.jsonl")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
