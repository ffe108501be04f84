#!/usr/bin/env bash
# GRPO (reinforcement learning) of a VideoLLaMA3 DeeptraceReward detector (the paper's best model), started from its
# SFT checkpoint, with the scorer's own per-sample values as rewards (format, verdict, box IoU, onset;
# REWARDS=deeptrace) and optionally a DeepfakeJudge reasoning reward (REWARDS=deeptrace_judge). Beyond the paper,
# which stops at SFT. LoRA by default (TUNER=full trains every weight). Rollouts use transformers' generate (the plugin
# registers the transformers model only: no vLLM rollouts). Settings: recipes/configs/videollama3_grpo_*.yaml and
# recipes/configs/rewards/*.yaml; plugins: recipes/plugins/videollama3.py (model), recipes/plugins/rewards.py.
# Needs: an SFT checkpoint (recipes/videollama3_{full,lora}.sh), converted data, 1-8 GPUs (estimate: 80 GB each with
# the paper's <= 180 frames).
#
#   SFT_CKPT=output/videollama3_full/full bash recipes/videollama3_grpo.sh          # 8 GPUs, LoRA, variant full
#   SFT_CKPT=... TUNER=full bash recipes/videollama3_grpo.sh                         # full RL, DeepSpeed ZeRO-3
#   SFT_CKPT=... REWARDS=deeptrace_judge bash recipes/videollama3_grpo.sh            # + the DeepfakeJudge reward
#   FPS_MAX_FRAMES=64 SFT_CKPT=... bash recipes/videollama3_grpo.sh --num_generations 4   # any `swift rlhf` flag
# SFT_CKPT: a LoRA or full SFT checkpoint, or an SFT output directory (its newest checkpoint-N). A LoRA checkpoint
# keeps training its adapter (base model from its args.json, or MODEL); the SFT model is the KL reference.
# Distributed settings (recipes/common.sh): NPROC_PER_NODE=8 NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500.
# DEEPSPEED: zero2 (LoRA default), zero3 (full default), a JSON file, or none.
# GLOBAL_BATCH_SIZE (default: the config's ENV, 64 completions = 8 prompts x 8 generations) sets the gradient
# accumulation steps: GLOBAL_BATCH_SIZE / (per-device batch x NPROC_PER_NODE x NNODES); a one-line error when it
# does not divide or when a generation round would split a prompt's group of --num_generations completions.
set -euo pipefail

SFT_CKPT="${SFT_CKPT:-}"
MODEL="${MODEL:-}"                  # base model of a LoRA SFT checkpoint (default: read from its args.json)
TUNER="${TUNER:-lora}"              # lora | full
REWARDS="${REWARDS:-deeptrace}"     # a preset in recipes/configs/rewards/ or a YAML file
DATA="${DATA:-data/deeptrace}"
VARIANT="${VARIANT:-full}"
DATASET="${DATASET:-}"              # one JSONL to train on instead of DATA/VARIANT/train.jsonl
OUTPUT_DIR="${OUTPUT_DIR:-output/videollama3_grpo_$TUNER/$REWARDS}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[[ "${VLLM:-false}" == false ]] || recipe_fail "VLLM=$VLLM: VideoLLaMA3 rollouts use transformers (the plugin registers no vLLM model)"
VLLM=false
DEEPSPEED="${DEEPSPEED:-$([[ "$TUNER" == full ]] && echo zero3 || echo zero2)}"
CONFIG="${CONFIG:-$RECIPES_DIR/configs/videollama3_grpo_$TUNER.yaml}"
recipe_distributed
recipe_deepspeed
recipe_grpo_setup "$@"

swift rlhf "$CONFIG" \
    --external_plugins "$RECIPES_DIR/plugins/videollama3.py" "$RECIPES_DIR/plugins/rewards.py" \
    "${START_ARGS[@]}" \
    --dataset "$TRAIN" \
    "${REWARD_ARGS[@]}" \
    "${ROLLOUT_ARGS[@]}" \
    --output_dir "$OUTPUT_DIR" \
    "${DEEPSPEED_ARGS[@]}" \
    "${BATCH_ARGS[@]}" \
    "$@"
