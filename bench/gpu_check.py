"""The first GPU hour, prepared: memory and speed of the video recipes at their real 7B size on one H100/H200.

    python bench/gpu_check.py prepare            # here, on CPU: bench/gpu/ (manifest, clips, tokenizer/processors,
                                                 # wheels); a few minutes, downloads wheels from PyPI
    bash bench/gpu_check.sh                      # there, on the GPU (installs bench/gpu/wheels, then `run`)
    python bench/gpu_check.py run --out DIR      # what gpu_check.sh runs; --tiny --device cpu rehearses it on CPU
    python bench/gpu_check.py report DIR/gpu_check.json   # the JSON as a table

`prepare` encodes one clip of DeeptraceReward's average size (paper Table 1: 739 x 1313 px, 5.7 s; here 1280 x 720
at 24 fps, 5.7 s) with each recipe's real ms-swift template and frame settings (config ENV) and writes the shapes
(frames, video tokens, sequence length, vision patches) to bench/gpu/manifest.json, so that the GPU side needs
neither a video decoder nor ms-swift to build the recipes' inputs. `run` then, on the GPU, for Qwen2.5-VL-7B-Instruct
and VideoLLaMA3-7B with random weights (configurations written from their published config.json values, below):
  stage A (plain PyTorch + transformers, always): a few bf16 training steps per recipe at its per-device batch
    (LoRA r8 on the LLM; full fine-tune with AdamW states in bf16, which one 141 GB GPU holds) with gradient
    checkpointing, then greedy generation (transformers; vLLM where importable) -> peak memory, samples/s,
    tokens/s, an MFU estimate, and the projected 8-GPU epoch time on DeeptraceReward's train split;
  stage B (when ms-swift imports, e.g. from bench/gpu/wheels, and time is left): the LoRA recipe scripts themselves
    for a few steps on the carried clips -> ms-swift's own step time and memory.
Everything it could not measure is listed with the reason. One JSON: DIR/gpu_check.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.errors import UserError, run_cli  # noqa: E402

GPU_DIR = ROOT / "bench" / "gpu"  # prepared here, carried to the GPU machine (ignored by git; see bench/README.md)
DEEPTRACE_TRAIN_SAMPLES = 6114  # paper App. G Table 3: 3,460 fake + 2,654 real
PAPER_CLIP = {"width": 1280, "height": 720, "seconds": 5.7, "fps": 24}  # paper Table 1: average 739x1313, 5.7 s
PEAK_BF16_FLOPS = 989e12  # H100/H200 SXM dense bf16 (datasheet); an MFU denominator, not a measured ceiling
ANSWER_TOKENS = 64  # a DeeptraceReward answer (verdict, box, onset, explanation) is ~40-80 tokens

# Published config.json values (HF hub): Qwen/Qwen2.5-VL-7B-Instruct, and DAMO-NLP-SG/VideoLLaMA3-7B as
# recipes/plugins/convert_videollama3.py converts it (its LLM is Qwen2.5-7B; its vision encoder SigLIP-NaViT, the
# so400m SigLIP shape). Tiny versions keep the structure for CPU rehearsals.
QWEN_TEXT_7B = {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                "num_attention_heads": 28, "num_key_value_heads": 4, "max_position_embeddings": 128000,
                "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "hidden_act": "silu", "tie_word_embeddings": False,
                "bos_token_id": 151643, "eos_token_id": 151645}
MODELS: dict[str, dict[str, Any]] = {
    "qwen2_5_vl": {
        "7b": {
            "text_config": {**QWEN_TEXT_7B, "rope_scaling": {"type": "mrope", "rope_type": "default",
                                                             "mrope_section": [16, 24, 24]}},
            "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                              "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2,
                              "temporal_patch_size": 2, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
                              "tokens_per_second": 2, "hidden_act": "silu"},
            "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
            "vision_end_token_id": 151653, "tie_word_embeddings": False,
        },
        "tiny": {
            "text_config": {**QWEN_TEXT_7B, "vocab_size": 151936, "hidden_size": 64, "intermediate_size": 128,
                            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                            "rope_scaling": {"type": "mrope", "rope_type": "default", "mrope_section": [4, 2, 2]}},
            "vision_config": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "in_chans": 3,
                              "out_hidden_size": 64, "patch_size": 14, "spatial_merge_size": 2,
                              "temporal_patch_size": 2, "window_size": 112, "fullatt_block_indexes": [1]},
            "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
            "vision_end_token_id": 151653, "tie_word_embeddings": False,
        },
    },
    "videollama3": {
        "7b": {
            "text_config": {"model_type": "qwen2", **QWEN_TEXT_7B, "max_position_embeddings": 32768},
            "vision_config": {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                              "num_attention_heads": 16, "patch_size": 14, "hidden_act": "gelu_pytorch_tanh",
                              "layer_norm_eps": 1e-6},
            "image_token_id": 151655, "video_token_id": 151656, "tie_word_embeddings": False,
        },
        "tiny": {
            "text_config": {"model_type": "qwen2", **QWEN_TEXT_7B, "vocab_size": 151936, "hidden_size": 64,
                            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                            "num_key_value_heads": 2, "max_position_embeddings": 32768},
            "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                              "num_attention_heads": 2, "patch_size": 14},
            "image_token_id": 151655, "video_token_id": 151656, "tie_word_embeddings": False,
        },
    },
}
# The video recipes measured, with the recipe config whose ENV (frames, budget) and per-device batch they use.
RECIPES = {"qwen2_5_vl_full": "qwen2_5_vl", "qwen2_5_vl_lora": "qwen2_5_vl", "videollama3_full": "videollama3",
           "videollama3_lora": "videollama3"}


# --- models ----------------------------------------------------------------------------------------------------------

def build_config(arch: str, size: str = "7b"):
    """The transformers config of `arch` at `size` ("7b": the published shape; "tiny": the same structure, small)."""
    from transformers import Qwen2_5_VLConfig, VideoLlama3Config

    if arch not in MODELS or size not in MODELS[arch]:
        raise UserError(f"unknown model {arch!r} at size {size!r}")
    values = json.loads(json.dumps(MODELS[arch][size]))
    cls = Qwen2_5_VLConfig if arch == "qwen2_5_vl" else VideoLlama3Config
    return cls(**values)


def model_class(arch: str):
    from transformers import Qwen2_5_VLForConditionalGeneration, VideoLlama3ForConditionalGeneration

    return Qwen2_5_VLForConditionalGeneration if arch == "qwen2_5_vl" else VideoLlama3ForConditionalGeneration


def parameter_counts(arch: str, size: str = "7b") -> dict[str, int]:
    """Parameters of the model built on the meta device (no memory): total, LLM (with embeddings and head), vision
    tower, projector."""
    import torch

    with torch.device("meta"):
        model = model_class(arch)(build_config(arch, size))
    counts = {"total": 0, "llm": 0, "vision": 0, "projector": 0}
    for name, p in model.named_parameters():
        counts["total"] += p.numel()
        if ".visual.merger" in name or "model.projector" in name:
            counts["projector"] += p.numel()
        elif ".visual." in name or "vision_model" in name:
            counts["vision"] += p.numel()
        else:
            counts["llm"] += p.numel()
    return counts


# --- what a recipe feeds the model (prepared on CPU with the real templates) ---------------------------------------

def encode_recipe(recipe: str, clip: Path, tiny_dir: Path) -> dict[str, Any]:
    """Shapes of one training sample of `recipe` on `clip`: its real ms-swift template with the config's ENV (frames,
    pixel budget), on the tiny model of the same architecture (the template depends on the processor, not the
    weights). Returns sequence length, video tokens, grid, patch rows and their width, and the kept-token count."""
    import torch

    from recipes import lib

    env, flags = lib.load_config(recipe)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        if flags.get("external_plugins"):
            from swift.utils import import_external_file

            import_external_file(str(ROOT / "recipes" / "plugins" / "videollama3.py"))
        from swift import get_model_processor, get_template

        _, processor = get_model_processor(str(tiny_dir), load_model=False, model_type=flags["model_type"],
                                           torch_dtype=torch.float32)
        template = get_template(processor, template_type=flags["template"])
        template.set_mode("train")
        from prompts.deeptrace import fake_answer, question

        encoded = template.encode({"messages": [
            {"role": "user", "content": question()},
            {"role": "assistant", "content": fake_answer([412, 96, 655, 380], 1.5, "the hand merges into the cup.")}],
            "videos": [str(clip)]})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    video_id = 151656
    ids = encoded["input_ids"]
    grid = encoded["video_grid_thw"][0].tolist()
    pixels = encoded["pixel_values_videos"]
    mask = encoded.get("video_compression_mask")
    return {"recipe": recipe, "arch": RECIPES[recipe], "seq_len": len(ids), "video_tokens": ids.count(video_id),
            "answer_tokens": sum(1 for label in encoded["labels"] if label != -100), "grid_thw": grid,
            "patch_rows": int(pixels.shape[0]), "patch_dim": int(pixels.shape[1]),
            "kept_tokens": int(mask.sum()) if mask is not None else ids.count(video_id),
            "per_device_batch": int(flags["per_device_train_batch_size"]), "env": env,
            "tuner": flags["tuner_type"]}


# --- measurements (stage A) ------------------------------------------------------------------------------------------

def synthetic_batch(shape: dict[str, Any], device: str, dtype):
    """A batch with the recipe's shapes: random pixels, the video tokens where the template puts them, the answer
    labelled. VideoLLaMA3 gets all tokens kept (compression off: the worst case for memory and time)."""
    import torch

    batch = shape["per_device_batch"]
    n_video = shape["grid_thw"][0] * shape["grid_thw"][1] * shape["grid_thw"][2]
    n_video //= 4  # 2x2 spatial merge in both models
    prompt = [151644, 872, 198] + [151656] * n_video + [198] + [1000] * 40 + [151645, 198, 151644, 77091, 198]
    ids = prompt + [1001] * shape["answer_tokens"]
    input_ids = torch.tensor([ids] * batch, device=device)
    labels = input_ids.clone()
    labels[:, :len(prompt)] = -100
    grid = torch.tensor([shape["grid_thw"]] * batch, device=device)
    pixels = torch.randn(shape["patch_rows"] * batch, shape["patch_dim"], device=device, dtype=dtype)
    inputs = {"input_ids": input_ids, "labels": labels, "attention_mask": torch.ones_like(input_ids),
              "pixel_values_videos": pixels, "video_grid_thw": grid}
    if shape["arch"] == "videollama3":
        inputs["video_merge_sizes"] = torch.tensor([2] * batch, device=device)
    return inputs, len(ids) * batch


def flops_per_token(counts: dict[str, int], tuner: str) -> float:
    """Training FLOPs per LLM token: 6N for a full fine-tune, ~4N with LoRA (no weight gradients of the frozen
    LLM); an estimate that ignores attention's quadratic term and the vision tower (counted separately)."""
    return (6 if tuner == "full" else 4) * counts["llm"]


def measure_training(arch: str, shape: dict[str, Any], *, size: str, device: str, steps: int,
                     attn: str) -> dict[str, Any]:
    import torch

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = build_config(arch, size)
    with torch.device(device):
        model = model_class(arch)._from_config(config, dtype=dtype, attn_implementation=attn)
    model.gradient_checkpointing_enable()
    model.config.use_cache = False
    if shape["tuner"] == "lora":
        from peft import LoraConfig, get_peft_model

        targets = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, target_modules=targets))
        model.enable_input_require_grads()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, betas=(0.9, 0.999))
    inputs, tokens = synthetic_batch(shape, device, dtype)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(steps + 1):  # step 0 warms up (allocator, kernels)
        start = time.perf_counter()
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - start)
    step_time = sorted(times)[len(times) // 2]
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    out = {"step_s": step_time, "samples_per_s": shape["per_device_batch"] / step_time,
           "tokens_per_s": tokens / step_time, "peak_memory_gib": peak, "loss": float(loss.detach()),
           "trainable_params": sum(p.numel() for p in trainable)}
    del model, optimizer, inputs
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def measure_generation(arch: str, shape: dict[str, Any], *, size: str, device: str, new_tokens: int,
                       attn: str) -> dict[str, Any]:
    import torch

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = build_config(arch, size)
    with torch.device(device):
        model = model_class(arch)._from_config(config, dtype=dtype, attn_implementation=attn).eval()
    inputs, _ = synthetic_batch({**shape, "answer_tokens": 0, "per_device_batch": 1}, device, dtype)
    inputs.pop("labels")
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    generated = out.shape[1] - inputs["input_ids"].shape[1]
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"backend": "transformers", "samples_per_s": 1 / seconds, "new_tokens_per_s": generated / seconds,
            "seconds": seconds, "peak_memory_gib": peak}


# --- the report ------------------------------------------------------------------------------------------------------

def project(train: dict[str, Any], shape: dict[str, Any], counts: dict[str, int], gpus: int = 8) -> dict[str, Any]:
    """MFU estimate and the projected epoch time on `gpus` GPUs, from one GPU's measured training speed."""
    # The vision tower sees patch_rows patches per sample: forward and backward when trained (6N per patch), forward
    # only when frozen (LoRA recipes: 2N).
    vision_flops = (6 if shape["tuner"] == "full" else 2) * counts["vision"] * shape["patch_rows"] \
        * train["samples_per_s"]
    achieved = flops_per_token(counts, shape["tuner"]) * train["tokens_per_s"] + vision_flops
    epoch_s = DEEPTRACE_TRAIN_SAMPLES / (train["samples_per_s"] * gpus)
    return {"mfu_estimate": achieved / PEAK_BF16_FLOPS, "achieved_tflops": achieved / 1e12,
            f"epoch_minutes_{gpus}gpu": epoch_s / 60,
            "projection": f"{DEEPTRACE_TRAIN_SAMPLES} samples / ({gpus} GPUs x measured samples/s): linear "
                          "data-parallel scaling, ZeRO-3 communication not included (a lower bound)"}


def build_report(meta: dict[str, Any], results: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """The one JSON: per recipe, training and generation numbers with projections; what could not be measured."""
    recipes = {}
    for recipe, res in results.items():
        entry = dict(res)
        train, shape = res.get("train"), res.get("shape")
        if train and shape and res.get("params"):
            entry.update(project(train, shape, res["params"]))
        recipes[recipe] = entry
    return {"meta": meta, "recipes": recipes, "not_measured": missing}


def table(report: dict[str, Any]) -> str:
    rows = ["| recipe | peak GiB | samples/s | tokens/s | MFU | 8-GPU epoch (min) | generate tok/s |",
            "|---|---:|---:|---:|---:|---:|---:|"]

    def fmt(value: Any, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    for recipe, entry in report["recipes"].items():
        train, gen = entry.get("train") or {}, entry.get("generate") or {}
        cells = [fmt(train.get("peak_memory_gib"), ".1f"), fmt(train.get("samples_per_s"), ".3f"),
                 fmt(train.get("tokens_per_s"), ".0f"), fmt(entry.get("mfu_estimate"), ".1%"),
                 fmt(entry.get("epoch_minutes_8gpu"), ".1f"), fmt(gen.get("new_tokens_per_s"), ".1f")]
        rows.append(f"| {recipe} | " + " | ".join(cells) + " |")
    lines = rows + ["", "Not measured:"] + [f"- {m}" for m in report["not_measured"]]
    return "\n".join(lines) + "\n"


# --- commands --------------------------------------------------------------------------------------------------------

def prepare(out: Path, *, wheels: bool) -> dict[str, Any]:
    """CPU side: manifest (recipe shapes), clips, tokenizer + processors, and (optionally) the wheel folder."""
    from tests.support import tiny_models
    from tests.support.media import write_mp4

    out.mkdir(parents=True, exist_ok=True)
    clip = write_mp4(out / "clips" / "average.mp4", 3, PAPER_CLIP["width"], PAPER_CLIP["height"],
                     fps=PAPER_CLIP["fps"], frames=round(PAPER_CLIP["seconds"] * PAPER_CLIP["fps"]))
    with tempfile.TemporaryDirectory() as scratch:  # tiny models: their processors drive the templates; not carried
        tiny = {arch: tiny_models.build(arch, Path(scratch) / arch) for arch in ("qwen2_5_vl", "videollama3")}
        shapes = {recipe: encode_recipe(recipe, clip, tiny[arch]) for recipe, arch in RECIPES.items()}
    manifest = {"clip": {**PAPER_CLIP, "path": str(clip.relative_to(out))}, "shapes": shapes,
                "params": {arch: parameter_counts(arch) for arch in MODELS}, "prepared": time.strftime("%Y-%m-%d")}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if wheels:
        download_wheels(out / "wheels")
    return manifest


# Packages that `swift sft` needs and the GPU machine's image lacks (its package list: the device tool's KINDS.md),
# pure-Python wheels (or Python-independent ones) so that they install on its Python 3.12.
WHEELS = ["ms-swift==4.6.0", "transformers==5.19.0", "trl==0.29.1", "datasets==4.8.4", "modelscope==1.40.2",
          "qwen-vl-utils==0.0.14", "decord==0.6.0", "addict==2.4.0", "attrdict==2.0.1", "binpacking==2.0.1",
          "dacite==1.9.2", "json-repair==0.64.6", "rouge==1.0.1", "cpm-kernels==1.0.11", "nltk==3.10.4", "dill==0.4.1",
          "multiprocess==0.70.19", "zstandard==0.25.0", "fastapi==0.165.0", "starlette==1.10.0", "uvicorn==0.54.0",
          "pydantic==2.14.4", "pydantic-core==2.50.5", "annotated-types==0.8.0", "typing-inspection==0.4.5",
          "openai==3.54.0", "distro==1.9.0", "jiter==0.19.0", "sniffio==1.3.1"]  # ~43 MiB, this stack's versions


def download_wheels(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    platforms = []
    for tag in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64",
                "manylinux1_x86_64"):
        platforms += ["--platform", tag]
    for spec in WHEELS:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", *platforms, "-d", str(folder), spec]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(f"gpu_check prepare: no wheel for {spec}: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
    size = sum(p.stat().st_size for p in folder.glob("*.whl"))
    print(f"wheels: {len(list(folder.glob('*.whl')))} files, {size / 2**20:.1f} MiB in {folder}")


def run(out: Path, *, size: str, device: str, steps: int, deadline: float, manifest_dir: Path) -> dict[str, Any]:
    import torch

    start = time.monotonic()
    manifest_path = manifest_dir / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(f"{manifest_path} not found: run `python bench/gpu_check.py prepare` first (bench/README.md)")
    manifest = json.loads(manifest_path.read_text())
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("no CUDA device: run with --device cpu --tiny to rehearse on CPU")
    missing: list[str] = []
    attn = "sdpa"
    try:
        import flash_attn  # noqa: F401

        attn = "flash_attention_2" if device == "cuda" else "sdpa"
    except ImportError:
        missing.append("flash-attn: not installed (its wheel is compiled per torch/CUDA and does not fit the 64 MiB "
                       "tree); attention measured with SDPA")
    for package, what in (("liger_kernel", "liger kernels"), ("vllm", "vLLM generation and GRPO rollouts"),
                          ("deepspeed", "DeepSpeed ZeRO-3 (+ offload): one GPU holds a bf16 full fine-tune, "
                                        "ZeRO-3 memory is projected by formula")):
        try:
            __import__(package)
        except ImportError:
            missing.append(f"{what}: {package} not installed")
    meta = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "size": size,
            "torch": torch.__version__, "attention": attn, "steps": steps, "clip": manifest["clip"],
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        import transformers

        meta["transformers"] = transformers.__version__
    except ImportError:  # pragma: no cover - the check needs transformers
        raise UserError("transformers is not importable") from None
    results: dict[str, Any] = {}
    for recipe, shape in manifest["shapes"].items():
        arch = shape["arch"]
        entry: dict[str, Any] = {"shape": shape, "params": manifest["params"][arch] if size == "7b"
                                 else parameter_counts(arch, size)}
        results[recipe] = entry
        if time.monotonic() - start > deadline:
            missing.append(f"{recipe}: skipped, the time budget ({deadline:.0f} s) was spent")
            continue
        try:
            entry["train"] = measure_training(arch, shape, size=size, device=device, steps=steps, attn=attn)
        except Exception as exc:  # noqa: BLE001 - one failed measurement must not lose the others
            entry["train_error"] = f"{type(exc).__name__}: {exc}"[:500]
            missing.append(f"{recipe} training: {entry['train_error']}")
            if device == "cuda":
                torch.cuda.empty_cache()
        if shape["tuner"] == "lora" and time.monotonic() - start < deadline:  # one generation per model
            try:
                entry["generate"] = measure_generation(arch, shape, size=size, device=device, new_tokens=32,
                                                       attn=attn)
            except Exception as exc:  # noqa: BLE001
                entry["generate_error"] = f"{type(exc).__name__}: {exc}"[:500]
                missing.append(f"{recipe} generation: {entry['generate_error']}")
    try:  # whether the carried wheels make ms-swift usable there (the recipe scripts need it)
        from swift.pipelines import sft_main  # noqa: F401

        meta["ms_swift"] = "importable"
    except Exception as exc:  # noqa: BLE001 - any import failure is the answer
        meta["ms_swift"] = f"not importable: {type(exc).__name__}: {exc}"[:300]
    missing.append("stage B (the recipe scripts through ms-swift on the carried clip): not automated; with ms-swift "
                   "importable, run `bash recipes/qwen2_5_vl_lora.sh --max_steps 5` by hand if time is left "
                   "(bench/README.md)")
    meta["seconds"] = time.monotonic() - start
    report = build_report(meta, results, missing)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    print(table(report), end="")
    print(f"written: {out / 'gpu_check.json'}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="CPU side: manifest, clips, tiny processors, wheels into bench/gpu/")
    p.add_argument("--out", default=str(GPU_DIR))
    p.add_argument("--no-wheels", action="store_true", help="skip downloading the wheel folder")
    p = sub.add_parser("run", help="GPU side: measure and write OUT/gpu_check.json")
    p.add_argument("--out", default="outputs/gpu_check")
    p.add_argument("--manifest-dir", default=str(GPU_DIR), help="where `prepare` wrote manifest.json")
    p.add_argument("--tiny", action="store_true", help="tiny models (a CPU rehearsal of the plumbing)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--steps", type=int, default=3, help="timed training steps after one warm-up step")
    p.add_argument("--deadline", type=float, default=480, help="seconds after which remaining recipes are skipped")
    p = sub.add_parser("report", help="print a gpu_check.json as a table")
    p.add_argument("json")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        manifest = prepare(Path(args.out), wheels=not args.no_wheels)
        print(json.dumps({k: {kk: v[kk] for kk in ("seq_len", "video_tokens", "grid_thw")}
                          for k, v in manifest["shapes"].items()}, indent=2))
    elif args.command == "run":
        run(Path(args.out), size="tiny" if args.tiny else "7b", device=args.device, steps=args.steps,
            deadline=args.deadline, manifest_dir=Path(args.manifest_dir))
    else:
        path = Path(args.json)
        if not path.is_file():
            raise UserError(f"{path} not found")
        print(table(json.loads(path.read_text())), end="")
    return 0


if __name__ == "__main__":
    run_cli(main)
