#!/usr/bin/env bash
# VideoLLaMA3-7B LoRA on DeeptraceReward: the paper's data settings (batch 1, fps 2, <= 180 frames, 1 epoch, AdamW)
# with LoRA r8/alpha32 on all linear layers of the LLM, lr 1e-4, vision tower and projector frozen. Not a paper
# setting (the paper only fine-tunes fully): the cheap option. Settings: recipes/configs/videollama3_lora.yaml.
# Plugin: recipes/plugins/videollama3.py (recipes/VIDEOLLAMA3.md).
# Needs: 1-8 GPUs with >= 40 GB (estimate), DeepSpeed ZeRO-2, converted data and a native-format checkpoint
# (see videollama3_full.sh).
#
#   bash recipes/videollama3_lora.sh                                  # 8 GPUs, variant full
#   NPROC_PER_NODE=2 VARIANT=no_explanation bash recipes/videollama3_lora.sh
#   bash recipes/videollama3_lora.sh --lora_rank 16 --lora_alpha 32     # any `swift sft` flag; overrides the config
# Distributed settings (recipes/common.sh): NPROC_PER_NODE=8 NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500.
# DEEPSPEED: zero2 (default), zero3, a JSON file, or none.
# GLOBAL_BATCH_SIZE (default: the config's ENV) sets the gradient accumulation steps: GLOBAL_BATCH_SIZE /
# (per-device batch x NPROC_PER_NODE x NNODES); a one-line error when it does not divide.
set -euo pipefail

MODEL="${MODEL:-ckpt/VideoLLaMA3-7B-native}"
DATA="${DATA:-data/deeptrace}"
VARIANT="${VARIANT:-full}"
OUTPUT_DIR="${OUTPUT_DIR:-output/videollama3_lora/$VARIANT}"
DEEPSPEED="${DEEPSPEED:-zero2}"    # LoRA: ZeRO-2 (weights replicated, ~16 GB in bf16)
NPROC_PER_NODE="${NPROC_PER_NODE:-8}"  # as videollama3_full.sh

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CONFIG="${CONFIG:-$RECIPES_DIR/configs/videollama3_lora.yaml}"
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
