#!/usr/bin/env bash
# The headline recipe: VideoLLaMA3-7B full fine-tune on DeeptraceReward, as in the paper (sec. 4, App. G): batch 1,
# fps 2, <= 180 frames, lr 1e-5, 1 epoch, AdamW, vision tower + projector + LLM all trained.
# Settings: recipes/configs/videollama3_full.yaml. ms-swift has no VideoLLaMA3: the plugin
# recipes/plugins/videollama3.py registers it (model type and template `videollama3`; recipes/VIDEOLLAMA3.md).
# Needs: 8 GPUs x 80 GB (paper: 8x H100 80GB, ~40 min/epoch), DeepSpeed ZeRO-3, converted data
# (python converters/labelbox_to_swift.py ... --variant all --out data/deeptrace) and a native-format checkpoint:
#   python recipes/plugins/convert_videollama3.py ckpt/VideoLLaMA3-7B ckpt/VideoLLaMA3-7B-native
#
#   bash recipes/videollama3_full.sh                                  # 8 GPUs, variant full
#   VARIANT=no_time bash recipes/videollama3_full.sh                  # ablation: no_time|no_explanation|no_time_no_explanation
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash recipes/videollama3_full.sh   # on every node, with its NODE_RANK
#   bash recipes/videollama3_full.sh --attn_impl flash_attn --max_steps 2        # any `swift sft` flag; overrides the config
# Distributed settings (recipes/common.sh): NPROC_PER_NODE=8 NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500.
# DEEPSPEED: zero3 (default), zero2, zero3_offload, a JSON file, or none.
# GLOBAL_BATCH_SIZE (default: the config's ENV) sets the gradient accumulation steps: GLOBAL_BATCH_SIZE /
# (per-device batch x NPROC_PER_NODE x NNODES); a one-line error when it does not divide.
set -euo pipefail

MODEL="${MODEL:-ckpt/VideoLLaMA3-7B-native}"
DATA="${DATA:-data/deeptrace}"
VARIANT="${VARIANT:-full}"
OUTPUT_DIR="${OUTPUT_DIR:-output/videollama3_full/$VARIANT}"
DEEPSPEED="${DEEPSPEED:-zero3}"    # not in the paper: ZeRO-3 for a 7B full fine-tune (VideoLLaMA3 stage 4: ZeRO-1)
NPROC_PER_NODE="${NPROC_PER_NODE:-8}"  # paper: 8x H100 80GB

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CONFIG="${CONFIG:-$RECIPES_DIR/configs/videollama3_full.yaml}"
[[ -e "$MODEL" || "$MODEL" != ckpt/* ]] || recipe_fail "MODEL=$MODEL not found: download and convert the paper's checkpoint first (huggingface-cli download DAMO-NLP-SG/VideoLLaMA3-7B --local-dir ckpt/VideoLLaMA3-7B; python recipes/plugins/convert_videollama3.py ckpt/VideoLLaMA3-7B $MODEL)"
TRAIN="$(recipe_split train)"
VAL="$(recipe_split val)"
recipe_distributed
recipe_deepspeed
recipe_batch "$@"

swift sft "$CONFIG" \
    --external_plugins "$RECIPES_DIR/plugins/videollama3.py" \
    --model "$MODEL" \
    --dataset "$TRAIN" \
    --val_dataset "$VAL" \
    --output_dir "$OUTPUT_DIR" \
    "${DEEPSPEED_ARGS[@]}" \
    "${BATCH_ARGS[@]}" \
    "$@"
