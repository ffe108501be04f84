#!/usr/bin/env bash
# `swift infer` over one split of the converted data with a trained model, writing the result JSONL that
# eval/score.py reads (a stale result file is removed first: swift appends). Prints the result path as its last line.
# CKPT: a LoRA adapter or full checkpoint, a training OUTPUT_DIR (its newest checkpoint-N), or a base model (zero-shot).
# Video sampling (FPS, FPS_MAX_FRAMES, ...) comes from the training recipe's config ENV: TRAIN_CONFIG, by default the
# config ms-swift copied next to the checkpoint (it copies `swift sft CONFIG.yaml` into the output directory).
# Needs: 1 GPU for a 7B model (bf16, ~20 GB with video), or NPROC_PER_NODE=N for data-parallel inference on N GPUs.
#
#   CKPT=output/qwen2_5_vl_full/full bash recipes/infer.sh                  # SPLIT=test, VARIANT=full
#   CKPT=output/qwen2_5_vl_lora/no_time VARIANT=no_time SPLIT=val bash recipes/infer.sh
#   CKPT=... bash recipes/infer.sh --infer_backend vllm --max_new_tokens 256  # any `swift infer` flag
#   CKPT=... INPUT=data/dfj/pointwise_test.jsonl bash recipes/infer.sh       # one JSONL instead of DATA/VARIANT/SPLIT
#   python eval/score.py --task deeptrace --predictions RESULT --references DATA/VARIANT/test.jsonl --out metrics.json
set -euo pipefail

CKPT="${CKPT:-}"
DATA="${DATA:-data/deeptrace}"
VARIANT="${VARIANT:-full}"
SPLIT="${SPLIT:-test}"
INPUT="${INPUT:-}"                  # one JSONL to run on (DATA, VARIANT and SPLIT are then not used)
RESULT_PATH="${RESULT_PATH:-}"      # default: CKPT/infer/VARIANT-SPLIT.jsonl (with INPUT: CKPT/infer/<INPUT's name>)
TRAIN_CONFIG="${TRAIN_CONFIG:-}"    # default: the *.yaml next to the checkpoint, if any

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CONFIG="${CONFIG:-$RECIPES_DIR/configs/infer.yaml}"
[[ -n "$CKPT" ]] || recipe_fail "set CKPT to a checkpoint, a training output directory or a model"
if [[ -n "$INPUT" ]]; then
    [[ -f "$INPUT" ]] || recipe_fail "INPUT file not found: $INPUT"
    RESULT_NAME="$(basename "$INPUT")"
else
    INPUT="$(recipe_split "$SPLIT")"
    RESULT_NAME="$VARIANT-$SPLIT.jsonl"
fi
FOUND="$(recipe_lib checkpoint "$CKPT")"   # "adapters PATH" (LoRA) or "model PATH" (full checkpoint / base model)
KIND="${FOUND%% *}"
CKPT_PATH="${FOUND#* }"

if [[ -z "$TRAIN_CONFIG" ]]; then
    TRAIN_CONFIG="$(recipe_lib train-config "$CKPT_PATH")"
fi
if [[ -n "$TRAIN_CONFIG" ]]; then
    ENV_LINES="$(recipe_lib env --trained "$TRAIN_CONFIG")"
    eval "$ENV_LINES"
else
    echo "infer.sh: no training config next to $CKPT_PATH: video sampling uses ms-swift's defaults (set TRAIN_CONFIG)" >&2
fi

if [[ -z "$RESULT_PATH" ]]; then
    if [[ -d "$CKPT_PATH" ]]; then
        RESULT_PATH="$CKPT_PATH/infer/$RESULT_NAME"
    else
        RESULT_PATH="output/infer/$(basename "$CKPT_PATH")/$RESULT_NAME"
    fi
fi
mkdir -p "$(dirname "$RESULT_PATH")"
[[ ! "$RESULT_PATH" -ef "$INPUT" ]] || recipe_fail "RESULT_PATH is the input file itself: $INPUT"
rm -f "$RESULT_PATH"   # swift infer appends to an existing result file
DP_ARGS=()
if [[ "${NPROC_PER_NODE:-1}" != 1 ]] && ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
    DP_ARGS=(--custom_register_path "$RECIPES_DIR/plugins/cpu_distributed.py")  # CPU-only data parallelism
fi

swift infer "$CONFIG" \
    "--$KIND" "$CKPT_PATH" \
    --val_dataset "$INPUT" \
    --result_path "$RESULT_PATH" \
    "${DP_ARGS[@]}" \
    "$@"

[[ -s "$RESULT_PATH" ]] || recipe_fail "swift infer wrote no result file: $RESULT_PATH"
inputs="$(grep -c . "$INPUT" || true)"
results="$(grep -c . "$RESULT_PATH" || true)"
[[ "$inputs" == "$results" ]] || recipe_fail "swift infer wrote $results result lines for $inputs inputs ($RESULT_PATH): not one per input"
echo "references: $INPUT" >&2
echo "$RESULT_PATH"
