#!/usr/bin/env bash
# Qwen2.5-VL-7B LoRA on FakeClue: FakeVLM's data settings (2 epochs, global batch 256, 3% warmup, cosine, max length
# 1024) with LoRA r8/alpha32 on all linear layers of the LLM, lr 1e-4, vision tower frozen, <= 576 visual tokens per
# image. Not in the paper (it fine-tunes LLaVA-1.5 fully): the modern, cheap option.
# Settings: recipes/configs/fakeclue_qwen2_5_vl_lora.yaml.
# Needs: 1-8 GPUs with >= 40 GB (estimate), DeepSpeed ZeRO-2, and the converted train split (see fakevlm_llava_full.sh).
#
#   bash recipes/fakeclue_qwen2_5_vl_lora.sh                               # 8 GPUs
#   NPROC_PER_NODE=1 bash recipes/fakeclue_qwen2_5_vl_lora.sh --per_device_train_batch_size 8   # 1 GPU: 32 accumulation
#                                                                          # steps keep the global batch 256
#   MODEL=Qwen/Qwen2.5-VL-3B-Instruct bash recipes/fakeclue_qwen2_5_vl_lora.sh
# Then: CKPT=output/fakeclue_qwen2_5_vl_lora INPUT=data/fakeclue/test.jsonl bash recipes/infer.sh
# Distributed settings (recipes/common.sh): NPROC_PER_NODE=8 NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500.
# DEEPSPEED: zero2 (default), zero3, a JSON file, or none.
# GLOBAL_BATCH_SIZE (default: the config's ENV) sets the gradient accumulation steps: GLOBAL_BATCH_SIZE /
# (per-device batch x NPROC_PER_NODE x NNODES); a one-line error when it does not divide.
set -euo pipefail

MODEL="${MODEL:-Qwen/Qwen2.5-VL-7B-Instruct}"
DATASET="${DATASET:-data/fakeclue/train.jsonl}"
VAL_DATASET="${VAL_DATASET:-}"     # optional; FakeClue has no val split
OUTPUT_DIR="${OUTPUT_DIR:-output/fakeclue_qwen2_5_vl_lora}"
DEEPSPEED="${DEEPSPEED:-zero2}"    # LoRA: ZeRO-2 (weights replicated, ~16 GB in bf16)
NPROC_PER_NODE="${NPROC_PER_NODE:-8}"  # as fakevlm_llava_full.sh

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CONFIG="${CONFIG:-$RECIPES_DIR/configs/fakeclue_qwen2_5_vl_lora.yaml}"
[[ -f "$DATASET" ]] || recipe_fail "DATASET file not found: $DATASET (convert first: python converters/fakeclue_to_swift.py train.json --image-root DIR --out $DATASET)"
VAL_ARGS=()
if [[ -n "$VAL_DATASET" ]]; then
    [[ -f "$VAL_DATASET" ]] || recipe_fail "VAL_DATASET file not found: $VAL_DATASET"
    VAL_ARGS=(--val_dataset "$VAL_DATASET")
fi
recipe_distributed
recipe_deepspeed
recipe_batch "$@"

swift sft "$CONFIG" \
    --model "$MODEL" \
    --dataset "$DATASET" \
    "${VAL_ARGS[@]}" \
    --output_dir "$OUTPUT_DIR" \
    "${DEEPSPEED_ARGS[@]}" \
    "${BATCH_ARGS[@]}" \
    "$@"
