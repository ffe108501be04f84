#!/usr/bin/env bash
# DeepfakeJudge pairwise judge: Qwen2.5-VL-7B (or 3B) LoRA r32/alpha64 on all linear layers, frozen ViT, lr 1e-6,
# 2 epochs, batch 16 per GPU, max length 2048, MAX_PIXELS=1003520 — the paper's recipe (DeepfakeJudge; upstream
# training/train_pairwise.sh). Settings: recipes/configs/dfj_pairwise_lora.yaml.
# Needs: 2 GPUs (the paper's; any number works, NPROC_PER_NODE) and the converted pairwise train split:
#   python converters/deepfakejudge_to_swift.py DeepfakeJudge-Dataset/dfj-meta/dfj-meta-pairwise/train \
#       --out data/dfj/pairwise_train.jsonl
#
#   bash recipes/dfj_pairwise_lora.sh                                             # 7B on 2 GPUs
#   MODEL=Qwen/Qwen2.5-VL-3B-Instruct OUTPUT_DIR=output/dfj_pairwise_3b bash recipes/dfj_pairwise_lora.sh
#   bash recipes/dfj_pairwise_lora.sh --num_train_epochs 1                         # any `swift sft` flag
# Then: CKPT=output/dfj_pairwise_lora INPUT=data/dfj/pairwise_test.jsonl bash recipes/infer.sh --max_new_tokens 2048
# Distributed settings (recipes/common.sh): NPROC_PER_NODE=2 NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500.
# DEEPSPEED: none (default, as the paper: plain DDP), zero2, zero3, or a JSON file.
# GLOBAL_BATCH_SIZE (default: the config's ENV) sets the gradient accumulation steps: GLOBAL_BATCH_SIZE /
# (per-device batch x NPROC_PER_NODE x NNODES); a one-line error when it does not divide.
set -euo pipefail

MODEL="${MODEL:-Qwen/Qwen2.5-VL-7B-Instruct}"
DATASET="${DATASET:-data/dfj/pairwise_train.jsonl}"
VAL_DATASET="${VAL_DATASET:-}"     # optional; the paper trains without one
OUTPUT_DIR="${OUTPUT_DIR:-output/dfj_pairwise_lora}"
DEEPSPEED="${DEEPSPEED:-none}"     # upstream: no --deepspeed (plain DDP)
NPROC_PER_NODE="${NPROC_PER_NODE:-2}"  # upstream train_pairwise.sh: NUM_GPUS=2

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CONFIG="${CONFIG:-$RECIPES_DIR/configs/dfj_pairwise_lora.yaml}"
[[ -f "$DATASET" ]] || recipe_fail "DATASET file not found: $DATASET (convert first: python converters/deepfakejudge_to_swift.py SPLIT_DIR --out $DATASET)"
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
