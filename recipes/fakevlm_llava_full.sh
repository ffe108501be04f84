#!/usr/bin/env bash
# FakeVLM: LLaVA-1.5-7B full fine-tune on FakeClue, vision tower included — the paper's recipe and the official
# scripts/train.sh: 2 epochs, global batch 256 (32 per GPU on 8 GPUs), lr 2e-5, 3% warmup, cosine, max length 1024,
# DeepSpeed ZeRO-2 (as the official script).
# Settings: recipes/configs/fakevlm_llava_full.yaml.
# Needs: 8 GPUs x 80 GB (paper: 8x A100), the llava-hf checkpoint, and the converted train split:
#   python converters/fakeclue_to_swift.py FakeClue/data_json/train.json --image-root FakeClue/train \
#       --out data/fakeclue/train.jsonl
#
#   bash recipes/fakevlm_llava_full.sh                                     # 8 GPUs
#   NPROC_PER_NODE=4 bash recipes/fakevlm_llava_full.sh      # 4 GPUs: 2 accumulation steps keep the global batch 256
#   bash recipes/fakevlm_llava_full.sh --max_steps 5                         # any `swift sft` flag; overrides the config
# Then: CKPT=output/fakevlm_llava_full INPUT=data/fakeclue/test.jsonl bash recipes/infer.sh
#       python eval/score.py --task fakeclue --predictions RESULT --references data/fakeclue/test.jsonl
# Distributed settings (recipes/common.sh): NPROC_PER_NODE=8 NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500.
# DEEPSPEED: zero2 (default), zero3, zero3_offload, a JSON file, or none. GLOBAL_BATCH_SIZE (default 256, the config's
# ENV) sets the gradient accumulation steps: GLOBAL_BATCH_SIZE / (per-device batch x NPROC_PER_NODE x NNODES).
set -euo pipefail

MODEL="${MODEL:-llava-hf/llava-1.5-7b-hf}"
DATASET="${DATASET:-data/fakeclue/train.jsonl}"
VAL_DATASET="${VAL_DATASET:-}"     # optional; FakeClue has no val split and the paper trains without one
OUTPUT_DIR="${OUTPUT_DIR:-output/fakevlm_llava_full}"
DEEPSPEED="${DEEPSPEED:-zero2}"    # official train.sh: DS_STAGE=zero2
NPROC_PER_NODE="${NPROC_PER_NODE:-8}"  # paper and official train.sh: 8 GPUs (A100)

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CONFIG="${CONFIG:-$RECIPES_DIR/configs/fakevlm_llava_full.yaml}"
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
