#!/usr/bin/env bash
# Qwen2.5-VL-7B full fine-tune on DeeptraceReward, as in the paper (App. G, Table 4): batch 2, fps 1, <= 20 frames,
# lr 1e-5, 1 epoch, AdamW, vision tower + projector + LLM all trained. Settings: recipes/configs/qwen2_5_vl_full.yaml.
# Needs: 8 GPUs x 80 GB (paper: 8x H100 80GB SXM, ~70 min/epoch), DeepSpeed ZeRO-3, and converted data
# (python converters/labelbox_to_swift.py ... --variant all --out data/deeptrace).
#
#   bash recipes/qwen2_5_vl_full.sh                                   # 8 GPUs, variant full
#   VARIANT=no_time bash recipes/qwen2_5_vl_full.sh                   # ablation: no_time|no_explanation|no_time_no_explanation
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash recipes/qwen2_5_vl_full.sh   # on every node, with its NODE_RANK
#   bash recipes/qwen2_5_vl_full.sh --max_steps 2 --learning_rate 2e-5          # any `swift sft` flag; overrides the config
# Distributed settings (recipes/common.sh): NPROC_PER_NODE=8 NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500.
# DEEPSPEED: zero3 (default), zero2, zero3_offload, a JSON file, or none.
# GLOBAL_BATCH_SIZE (default: the config's ENV) sets the gradient accumulation steps: GLOBAL_BATCH_SIZE /
# (per-device batch x NPROC_PER_NODE x NNODES); a one-line error when it does not divide.
set -euo pipefail

MODEL="${MODEL:-Qwen/Qwen2.5-VL-7B-Instruct}"
DATA="${DATA:-data/deeptrace}"
VARIANT="${VARIANT:-full}"
OUTPUT_DIR="${OUTPUT_DIR:-output/qwen2_5_vl_full/$VARIANT}"
DEEPSPEED="${DEEPSPEED:-zero3}"    # not in the paper: ZeRO-3 for a 7B full fine-tune on 80 GB GPUs
NPROC_PER_NODE="${NPROC_PER_NODE:-8}"  # paper: 8x H100 80GB

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CONFIG="${CONFIG:-$RECIPES_DIR/configs/qwen2_5_vl_full.yaml}"
TRAIN="$(recipe_split train)"
VAL="$(recipe_split val)"
recipe_distributed
recipe_deepspeed
recipe_batch "$@"

swift sft "$CONFIG" \
    --model "$MODEL" \
    --dataset "$TRAIN" \
    --val_dataset "$VAL" \
    --output_dir "$OUTPUT_DIR" \
    "${DEEPSPEED_ARGS[@]}" \
    "${BATCH_ARGS[@]}" \
    "$@"
