#!/usr/bin/env bash
# GRPO (reinforcement learning) of a Qwen2.5-VL DeeptraceReward detector, started from its SFT checkpoint, with the
# scorer's own per-sample values as rewards (format, verdict, box IoU, onset; REWARDS=deeptrace) and optionally a
# DeepfakeJudge reasoning reward served at an OpenAI-compatible endpoint (REWARDS=deeptrace_judge). Beyond the paper,
# which stops at SFT. LoRA by default (TUNER=full trains every weight). Settings: recipes/configs/qwen2_5_vl_grpo_*.yaml
# (how to train) and recipes/configs/rewards/*.yaml (what is optimised); reward code: recipes/plugins/rewards.py.
# Needs: an SFT checkpoint (recipes/qwen2_5_vl_{full,lora}.sh), converted data, 1-8 GPUs (estimate: >= 40 GB for
# LoRA, 80 GB for full); VLLM=true also needs `pip install vllm`.
#
#   SFT_CKPT=output/qwen2_5_vl_full/full bash recipes/qwen2_5_vl_grpo.sh          # 8 GPUs, LoRA, variant full
#   SFT_CKPT=output/qwen2_5_vl_full/full VLLM=true bash recipes/qwen2_5_vl_grpo.sh # rollouts with colocated vLLM
#   SFT_CKPT=... TUNER=full bash recipes/qwen2_5_vl_grpo.sh                        # full RL, DeepSpeed ZeRO-3
#   SFT_CKPT=... REWARDS=deeptrace_judge bash recipes/qwen2_5_vl_grpo.sh           # + the DeepfakeJudge reward
#   SFT_CKPT=output/fakeclue_qwen2_5_vl_lora DATASET=data/fakeclue/train.jsonl REWARDS=fakeclue \
#       bash recipes/qwen2_5_vl_grpo.sh                                            # FakeClue (images)
#   bash recipes/qwen2_5_vl_grpo.sh --num_generations 16 --reward_weights 0 1 2 1  # any `swift rlhf` flag
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
DATASET="${DATASET:-}"              # one JSONL to train on instead of DATA/VARIANT/train.jsonl (e.g. FakeClue)
VLLM="${VLLM:-false}"               # true: rollouts with vLLM colocated on the training GPUs
VLLM_GPU_MEMORY_UTILIZATION="${VLLM_GPU_MEMORY_UTILIZATION:-0.4}"
OUTPUT_DIR="${OUTPUT_DIR:-output/qwen2_5_vl_grpo_$TUNER/$REWARDS}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
DEEPSPEED="${DEEPSPEED:-$([[ "$TUNER" == full ]] && echo zero3 || echo zero2)}"
CONFIG="${CONFIG:-$RECIPES_DIR/configs/qwen2_5_vl_grpo_$TUNER.yaml}"
recipe_distributed
recipe_deepspeed
recipe_grpo_setup "$@"

swift rlhf "$CONFIG" \
    --external_plugins "$RECIPES_DIR/plugins/rewards.py" \
    "${START_ARGS[@]}" \
    --dataset "$TRAIN" \
    "${REWARD_ARGS[@]}" \
    "${ROLLOUT_ARGS[@]}" \
    --output_dir "$OUTPUT_DIR" \
    "${DEEPSPEED_ARGS[@]}" \
    "${BATCH_ARGS[@]}" \
    "$@"
