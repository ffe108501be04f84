"""ms-swift plugin: VideoLLaMA3 (transformers' native `VideoLlama3ForConditionalGeneration`) as model type and
template `videollama3`. ms-swift 4.6 has no VideoLLaMA3 support; load this file with

    swift sft --external_plugins recipes/plugins/videollama3.py --model DIR --model_type videollama3 \\
        --template videollama3 ...

What it registers (how and why: recipes/VIDEOLLAMA3.md):
- model arch `videollama3`: LLM `model.language_model` + `lm_head`, vision tower `model.vision_model`, aligner
  `model.projector` (drives --freeze_vit / --freeze_aligner / --freeze_llm and LoRA's target modules);
- model type `videollama3`: loads native-format checkpoints (config `model_type: video_llama_3`). The paper's
  remote-code checkpoint DAMO-NLP-SG/VideoLLaMA3-7B (`videollama3_qwen2`) is refused with a pointer to
  recipes/plugins/convert_videollama3.py, which converts it to the native format;
- template `videollama3`: ChatML without a default system prompt, VideoLLaMA3's own training format. A video is
  sampled as VideoLLaMA3 samples it (`sample_videollama3`: ffmpeg's `fps=FPS:round=down` filter, then at most
  FPS_MAX_FRAMES frames picked evenly; defaults 2 and 180, the paper's setting), then written as VideoLLaMA3 does:
  per frame `Time {t:.1f}s:` + that frame's video tokens, frames joined by `,`, then `\\n`; the text around a media
  tag is stripped (`<video> Decide` -> `...\\nDecide`), as VideoLLaMA3's data loader does. Token compression
  (VideoLLaMA3's rule: a frame's merged patch is dropped when the mean absolute difference of its normalised pixels
  from the previous frame's, x255, is <= 0.1; the first frame and at least one token per frame are kept) is decided
  here, in the template, from the native processor's `video_compression_mask`: dropped tokens are never put into
  input_ids, so labels stay aligned and the model (which masks its video features with the same mask) never deletes
  positions. Images: `<|image_pad|>` x n + `\\n`.

Environment variables read by the template (at start-up):
    FPS (2), FPS_MAX_FRAMES (180)                        frame sampling (VideoLLaMA3's sampler, above)
    VIDEO_TOTAL_PIXELS (8028160 = 10240 tokens x 784)    pixel budget of a whole video before compression: VideoLLaMA3's
                                                         fine-tuning budget (stage 4 --mm_max_length 10240), so that
                                                         inference without the training config sees what training saw
    VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS                   per-frame caps (optional; as for Qwen2.5-VL)
    MAX_PIXELS, MIN_PIXELS                               per-image caps (optional; default: the processor's size)
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from typing import Any, Literal

import torch
from swift.model import Model, ModelGroup, ModelLoader, ModelMeta, MultiModelKeys, register_model, register_model_arch
from swift.template import StdTemplateInputs, Template, register_template
from swift.template.templates.utils import ChatmlTemplateMeta
from swift.template.utils import findall
from swift.utils import get_env_args

MODEL_TYPE = TEMPLATE_TYPE = ARCH = "videollama3"
IMAGE_TOKEN, VIDEO_TOKEN = "<|image_pad|>", "<|video_pad|>"
REMOTE_MODEL_TYPE = "videollama3_qwen2"  # DAMO-NLP-SG/VideoLLaMA3-{2B,7B}: trust_remote_code checkpoints
CONVERTER = "recipes/plugins/convert_videollama3.py"
DEFAULT_FPS, DEFAULT_MAX_FRAMES = 2.0, 180  # the paper's setting (DeeptraceReward Table 4)
DEFAULT_VIDEO_TOTAL_PIXELS = 10240 * 28 * 28  # VideoLLaMA3 stage 4 --mm_max_length 10240 (tokens of 28x28 pixels)
_MEDIA_TAG = re.compile(r"(<video>|<image>)")

register_model_arch(
    MultiModelKeys(
        ARCH,
        language_model=["model.language_model", "lm_head"],
        aligner="model.projector",
        vision_tower="model.vision_model",
    ),
    exist_ok=True,
)


class VideoLlama3Loader(ModelLoader):
    """Native transformers VideoLLaMA3; no remote code is run."""

    default_trust_remote_code = False

    def get_config(self, model_dir: str):
        config_file = os.path.join(model_dir, "config.json")
        if os.path.isfile(config_file):
            with open(config_file, encoding="utf-8") as fh:
                model_type = json.load(fh).get("model_type")
            if model_type == REMOTE_MODEL_TYPE:
                raise ValueError(
                    f"{model_dir} is a remote-code VideoLLaMA3 checkpoint (model_type {REMOTE_MODEL_TYPE!r}); "
                    f"convert it to the native transformers format first: python {CONVERTER} {model_dir} OUT_DIR")
        from transformers import VideoLlama3Config

        self.auto_config_cls = VideoLlama3Config
        return super().get_config(model_dir)

    def get_model(self, model_dir: str, *args, **kwargs):
        from transformers import VideoLlama3ForConditionalGeneration

        self.auto_model_cls = self.auto_model_cls or VideoLlama3ForConditionalGeneration
        return super().get_model(model_dir, *args, **kwargs)


register_model(
    ModelMeta(
        MODEL_TYPE,
        [
            ModelGroup([
                # Native-format checkpoints on the HF hub (image variants; no native video checkpoint is published).
                Model(None, "lkhl/VideoLLaMA3-2B-Image-HF"),
                Model(None, "lkhl/VideoLLaMA3-7B-Image-HF"),
            ]),
        ],
        VideoLlama3Loader,
        template=TEMPLATE_TYPE,
        model_arch=ARCH,
        # A remote-code directory maps here too, so that the loader can say how to convert it.
        architectures=["VideoLlama3ForConditionalGeneration", "Videollama3Qwen2ForCausalLM"],
        is_multimodal=True,
        requires=["transformers>=5.0", "decord"],
        tags=["vision", "video"],
    ),
    exist_ok=True,
)


def sample_videollama3(starts: Sequence[float], end: float, fps: float,
                       max_frames: int) -> tuple[list[int], list[int]]:
    """VideoLLaMA3's frame sampler, on a clip's decoded frames: (indices of the frames taken, their slots).

    VideoLLaMA3 (videollama3/mm_utils.py `load_video`, and the same in its inference processor) decodes with ffmpeg's
    `fps=FPS:round=down` filter and then keeps at most `max_frames` frames, `np.linspace(0, n - 1, max_frames)`.
    That filter gives each decoded frame the output slot floor(pts x FPS), emits slot k with the last frame whose slot
    is <= k, and stops before the slot of the clip's end (last frame's pts + duration): floor(duration x FPS) frames,
    frame k being the last one shown before (k + 1) / FPS. VideoLLaMA3 then labels frame k `Time {k / FPS}s`
    (its timestamps are np.arange(start, ..., 1 / FPS)): slot k's timestamp is k / FPS after the first slot.
    A clip shorter than 1 / FPS gets no frame from ffmpeg (VideoLLaMA3 then fails); here it keeps its first slot.
    `starts` are the frames' presentation times in seconds (ascending), `end` the clip's end. Tested against
    libavfilter's own fps filter (through PyAV) in tests/recipes/test_videollama3.py.
    """
    if not starts:
        raise ValueError("the video has no frames")
    bins = [math.floor(round(t * fps, 4)) for t in starts]  # rounded first: decord's times are float32
    first, stop = bins[0], math.floor(round(end * fps, 4))
    indices, frame = [], 0
    for slot in range(first, max(stop, first + 1)):
        while frame + 1 < len(bins) and bins[frame + 1] <= slot:
            frame += 1
        indices.append(frame)
    slots = list(range(len(indices)))
    if len(indices) > max_frames:
        keep = [int(i) for i in _linspace_int(len(indices) - 1, max_frames)]
        indices, slots = [indices[i] for i in keep], [slots[i] for i in keep]
    return indices, slots


def _linspace_int(last: int, count: int) -> list[int]:
    """np.linspace(0, last, count, dtype=int), VideoLLaMA3's cap on the number of frames."""
    import numpy as np

    return np.linspace(0, last, count, dtype=int).tolist()


def strip_around_media(text: str) -> str:
    """`<video> Decide ...` -> `<video>Decide ...`: VideoLLaMA3's data loader (videollama3/train.py) splits a user
    message at its media tag and strips each text chunk, dropping empty ones."""
    parts = _MEDIA_TAG.split(text)
    return "".join(part if _MEDIA_TAG.fullmatch(part) else part.strip() for part in parts)


def _frame_prefix(index: int, timestamp: float) -> str:
    """Text before frame `index`'s tokens: `Time 0.0s:` for the first frame, `,Time 0.5s:` after (VideoLLaMA3)."""
    return ("," if index else "") + f"Time {timestamp:.1f}s:"


class VideoLlama3Template(Template):
    placeholder_tokens = [IMAGE_TOKEN, VIDEO_TOKEN]
    norm_bbox = "norm1000"  # images only (ms-swift never rescales boxes of video samples); VideoLLaMA3's own grid

    def init_env_args(self) -> None:
        super().init_env_args()
        self.fps = get_env_args("fps", float, DEFAULT_FPS)
        self.fps_max_frames = get_env_args("fps_max_frames", int, DEFAULT_MAX_FRAMES)
        self.video_total_pixels = get_env_args("video_total_pixels", int, DEFAULT_VIDEO_TOTAL_PIXELS)
        self.video_max_pixels = get_env_args("video_max_pixels", int, None)
        self.video_min_pixels = get_env_args("video_min_pixels", int, None)
        self.image_max_pixels = get_env_args("max_pixels", int, None)
        self.image_min_pixels = get_env_args("min_pixels", int, None)
        tokenizer = self.processor.tokenizer
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.video_token_id = tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)

    # --- prompt ------------------------------------------------------------------------------------------------

    def _preprocess_inputs(self, inputs: StdTemplateInputs) -> None:
        for message in inputs.messages:
            if message["role"] == "user" and isinstance(message["content"], str) and _MEDIA_TAG.search(
                    message["content"]):
                message["content"] = strip_around_media(message["content"])
        super()._preprocess_inputs(inputs)

    def replace_tag(self, media_type: Literal["image", "video", "audio"], index: int,
                    inputs: StdTemplateInputs) -> list:
        if media_type == "image":
            return [IMAGE_TOKEN + "\n"]  # expanded to the image's token count in _encode
        if media_type == "video":
            return [VIDEO_TOKEN + "\n"]  # expanded to `Time t:` + tokens per frame in _encode
        raise ValueError(f"VideoLLaMA3 has no {media_type} input")

    def replace_ref(self, ref: str, index: int, inputs: StdTemplateInputs) -> list:
        return [f"<ref>{ref}</ref>"]

    def replace_bbox(self, bbox: list[int], index: int, inputs: StdTemplateInputs) -> list:
        return [f"[[{', '.join(str(v) for v in bbox)}]]"]  # VideoLLaMA3's grounding format, 0-1000 grid

    # --- media -------------------------------------------------------------------------------------------------

    def video_size(self, num_frames: int) -> dict[str, int]:
        """`size` for the video processor: shortest_edge = per-frame minimum pixels, longest_edge = pixels of the
        whole video (the processor gives each frame longest_edge // num_frames)."""
        size = dict(self.processor.video_processor.size)
        total = self.video_total_pixels
        if self.video_max_pixels:
            total = min(total, self.video_max_pixels * num_frames)
        minimum = self.video_min_pixels or size["shortest_edge"]
        return {"shortest_edge": int(minimum), "longest_edge": int(total)}

    def image_size(self) -> dict[str, int]:
        size = dict(self.processor.image_processor.size)
        return {"shortest_edge": int(self.image_min_pixels or size["shortest_edge"]),
                "longest_edge": int(self.image_max_pixels or size["longest_edge"])}

    def load_video(self, video: Any):
        """Frames (T, H, W, 3 uint8) sampled by VideoLLaMA3's rule (`sample_videollama3`), and VideoMetadata that
        says so to the native processor: a clip of FPS frames per second whose frames are the sampled slots, so
        that `metadata.timestamps` are VideoLLaMA3's `Time` values."""
        import decord
        from transformers.video_utils import VideoMetadata

        if isinstance(video, dict):
            video = video.get("path") or video.get("video")
        if not isinstance(video, str):
            raise ValueError(f"videollama3 template: a video must be a file path, got {type(video).__name__}")
        if not os.path.isfile(video):
            raise FileNotFoundError(f"video not found: {video} (relative paths resolve against ROOT_IMAGE_DIR or "
                                    "the working directory)")
        reader = decord.VideoReader(video, num_threads=1)
        times = reader.get_frame_timestamp(range(len(reader)))
        indices, slots = sample_videollama3(times[:, 0].tolist(), float(times[-1, 1]), self.fps, self.fps_max_frames)
        frames = reader.get_batch(indices).asnumpy()
        metadata = VideoMetadata(total_num_frames=max(slots) + 1, fps=self.fps, width=frames.shape[2],
                                 height=frames.shape[1], duration=float(times[-1, 1]), video_backend="decord",
                                 frames_indices=slots)
        return frames, metadata

    def _encode(self, inputs: StdTemplateInputs) -> dict[str, Any]:
        encoded = super()._encode(inputs)
        input_ids, labels, loss_scale = encoded["input_ids"], encoded["labels"], encoded.get("loss_scale")
        processor = self.processor
        if inputs.images:
            media = processor.image_processor(images=inputs.images, size=self.image_size(), return_tensors="pt")
            merge = media["image_merge_sizes"]
            counts = (media["image_grid_thw"].prod(-1) // merge**2).tolist()
            input_ids, labels, loss_scale = self._extend_tokens(
                input_ids, labels, loss_scale, findall(input_ids, self.image_token_id),
                lambda i: [self.image_token_id] * counts[i])
            encoded.update(media)
        if inputs.videos:
            pixels, grids, merges, masks, per_video_ids = [], [], [], [], []
            for video in inputs.videos:
                frames, metadata = self.load_video(video)
                media = processor.video_processor(
                    videos=[frames], video_metadata=[metadata], do_sample_frames=False,
                    size=self.video_size(len(frames)), return_tensors="pt")
                mask = media["video_compression_mask"]
                per_frame = [int(m.sum()) for m in mask.split(len(mask) // len(frames))]
                ids: list[int] = []
                for i, (count, t) in enumerate(zip(per_frame, metadata.timestamps, strict=True)):
                    ids += self.processor.tokenizer.encode(_frame_prefix(i, t), add_special_tokens=False)
                    ids += [self.video_token_id] * count
                per_video_ids.append(ids)
                pixels.append(media["pixel_values_videos"])
                grids.append(media["video_grid_thw"])
                merges.append(media["video_merge_sizes"])
                masks.append(mask)
            input_ids, labels, loss_scale = self._extend_tokens(
                input_ids, labels, loss_scale, findall(input_ids, self.video_token_id), lambda i: per_video_ids[i])
            encoded.update({
                "pixel_values_videos": torch.cat(pixels), "video_grid_thw": torch.cat(grids),
                "video_merge_sizes": torch.cat(merges), "video_compression_mask": torch.cat(masks),
            })
        encoded["input_ids"], encoded["labels"], encoded["loss_scale"] = input_ids, labels, loss_scale
        return encoded

    def _data_collator_mm_data(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        res = super()._data_collator_mm_data(batch)  # pixel_values(_videos), image/video_grid_thw
        for key in ("image_merge_sizes", "video_merge_sizes", "video_compression_mask"):
            value = self.concat_tensor(batch, key, 0)
            if value is not None:
                res[key] = value
        return res

    # --- training: vision features merged before the LLM, on every rank -----------------------------------------

    def _post_encode(self, model, inputs: dict[str, Any]) -> dict[str, Any]:
        """Training only: inputs_embeds with the image/video features scattered in. A batch without media runs
        the vision tower on a dummy image (x0), so that DeepSpeed ZeRO-3 / DDP see the same parameters on every
        rank. At inference the model's own forward merges the features (generate drops them after prefill)."""
        if not self.is_training:
            return inputs
        vl3 = self.get_base_model(model).model  # VideoLlama3Model
        input_ids = inputs["input_ids"]
        embeds = vl3.language_model.embed_tokens(input_ids)
        has_media = False
        if inputs.get("pixel_values") is not None:
            has_media = True
            feats = vl3.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"],
                                           inputs["image_merge_sizes"]).pooler_output
            feats = torch.cat(feats).to(embeds.device, embeds.dtype)
            mask = (input_ids == self.image_token_id).unsqueeze(-1).expand_as(embeds)
            embeds = embeds.masked_scatter(mask, feats)
        if inputs.get("pixel_values_videos") is not None:
            has_media = True
            feats = vl3.get_video_features(inputs["pixel_values_videos"], inputs["video_grid_thw"],
                                           inputs["video_merge_sizes"]).pooler_output
            feats = torch.cat(feats)
            if inputs.get("video_compression_mask") is not None:
                feats = feats[inputs["video_compression_mask"].to(feats.device)]
            mask = (input_ids == self.video_token_id).unsqueeze(-1).expand_as(embeds)
            embeds = embeds.masked_scatter(mask, feats.to(embeds.device, embeds.dtype))
        if not has_media:
            from PIL import Image

            dummy = self.processor.image_processor(images=[Image.new("RGB", (28, 28))], return_tensors="pt")
            dtype = next(vl3.vision_model.parameters()).dtype
            feats = vl3.get_image_features(dummy["pixel_values"].to(embeds.device, dtype),
                                           dummy["image_grid_thw"].to(embeds.device),
                                           dummy["image_merge_sizes"].to(embeds.device)).pooler_output
            embeds = embeds + torch.cat(feats).mean().to(embeds.dtype) * 0.0
        return {"inputs_embeds": embeds}


register_template(
    ChatmlTemplateMeta(
        TEMPLATE_TYPE,
        template_cls=VideoLlama3Template,
        default_system=None,  # VideoLLaMA3's training code adds no system prompt (pass --system to add one)
        auto_add_bos=False,
        stop_words=["<|endoftext|>"],
    ),
    exist_ok=True,
)

__all__ = ["VideoLlama3Loader", "VideoLlama3Template", "MODEL_TYPE", "TEMPLATE_TYPE"]
