# shellcheck shell=bash disable=SC2034  # (variables here are used by the scripts that source this file)
# Sourced by the recipes (recipes/*.sh): what they share, defined once. Not a recipe itself.
#
# Provides:
#   RECIPES_DIR, REPO_ROOT, PYTHON         paths; PYTHON = the python next to `swift` (override: PYTHON=...)
#   recipe_fail MSG                        one-line error on stderr, exit 2
#   recipe_lib ARGS...                     python recipes/lib.py ARGS..., its error under the recipe's name
#   recipe_split SPLIT                     the JSONL of SPLIT for $VARIANT in $DATA (rules: recipes/lib.py split_file)
#   recipe_distributed                     torchrun settings, exported (ms-swift launches torchrun when they are set):
#                                          NPROC_PER_NODE=8 NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500
#   recipe_deepspeed                       DEEPSPEED_ARGS=(--deepspeed $DEEPSPEED), or () for DEEPSPEED=none
#   recipe_batch "$@"                      BATCH_ARGS=(--gradient_accumulation_steps N) making $CONFIG's global batch
#                                          (GLOBAL_BATCH_SIZE) on NPROC_PER_NODE x NNODES; one-line error when it
#                                          does not divide (rule: recipes/lib.py batch_plan). Call after
#                                          recipe_distributed, with the flags the recipe passes on.
#   recipe_grpo_setup "$@"                 the GRPO recipes' checkpoint, data, rewards, rollouts and batch (below)
# Needs bash >= 4.4 (empty arrays under `set -u`).

RECIPES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$RECIPES_DIR")"

recipe_fail() {
    echo "$(basename "$0"): error: $*" >&2
    exit 2
}

command -v swift >/dev/null 2>&1 || recipe_fail "ms-swift's \`swift\` is not on PATH (activate the environment: source .venv/bin/activate)"
if [[ -z "${PYTHON:-}" ]]; then
    PYTHON="$(dirname "$(command -v swift)")/python"
    [[ -x "$PYTHON" ]] || PYTHON=python3
fi

# recipes/lib.py's CLI; its one-line error is re-issued under the recipe's name (exit 2). Use as: X="$(recipe_lib ...)"
recipe_lib() {
    local out
    if ! out="$("$PYTHON" "$RECIPES_DIR/lib.py" "$@" 2>&1)"; then
        recipe_fail "${out#lib.py: error: }"
    fi
    echo "$out"
}

# Prints the path, or a one-line error (exit 2). Use as: TRAIN="$(recipe_split train)"
recipe_split() {
    recipe_lib split "$DATA" "$VARIANT" "$1"
}

recipe_distributed() {
    export NPROC_PER_NODE="${NPROC_PER_NODE:-8}"
    export NNODES="${NNODES:-1}"
    export NODE_RANK="${NODE_RANK:-0}"
    if [[ "$NNODES" != 1 && -z "${MASTER_ADDR:-}" ]]; then
        recipe_fail "NNODES=$NNODES needs MASTER_ADDR (the address of the node with NODE_RANK=0)"
    fi
    export MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
    export MASTER_PORT="${MASTER_PORT:-29500}"
}

recipe_deepspeed() {
    DEEPSPEED_ARGS=()
    case "$DEEPSPEED" in
        none | "") ;;
        *) DEEPSPEED_ARGS=(--deepspeed "$DEEPSPEED") ;;
    esac
}

# GRPO recipes (recipes/*_grpo.sh), called as `recipe_grpo_setup "$@"` after recipe_distributed: reads SFT_CKPT,
# TUNER, MODEL, REWARDS, DATA/VARIANT or DATASET, OUTPUT_DIR, VLLM, VLLM_GPU_MEMORY_UTILIZATION and CONFIG; sets
# START_ARGS (--model/--adapters/--ref_adapters: recipes/lib.py start_flags), REWARD_ARGS (the preset's
# --reward_funcs/--reward_weights), ROLLOUT_ARGS (vLLM or not), BATCH_ARGS (recipe_batch: the GRPO config's global
# batch, checked against num_generations), TRAIN (OUTPUT_DIR/grpo_train.jsonl: the train rows with their answer kept
# as `solution`), and exports what the SFT checkpoint was trained on (its training config's ENV without the run's
# GLOBAL_BATCH_SIZE: frames as in SFT) and the reward preset's ENV (where not already set).
recipe_grpo_setup() {
    [[ -n "$SFT_CKPT" ]] || recipe_fail "set SFT_CKPT to the SFT checkpoint (or SFT output directory) to start from"
    local out config rewards_config
    out="$(recipe_lib start "$SFT_CKPT" "$TUNER" "$MODEL")"
    mapfile -t START_ARGS <<< "$out"
    if [[ -n "$DATASET" ]]; then
        [[ -f "$DATASET" ]] || recipe_fail "DATASET file not found: $DATASET"
        TRAIN="$DATASET"
    else
        TRAIN="$(recipe_split train)"
    fi
    case "$REWARDS" in
        *.yaml | *.yml) rewards_config="$REWARDS" ;;
        *) rewards_config="rewards/$REWARDS" ;;
    esac
    out="$(recipe_lib flags "$rewards_config")"
    mapfile -t REWARD_ARGS <<< "$out"
    out="$(recipe_lib env "$rewards_config")"
    eval "$out"
    config="$(recipe_lib train-config "${START_ARGS[-1]}")"
    if [[ -n "$config" ]]; then
        out="$(recipe_lib env --trained "$config")"
        eval "$out"
    fi
    case "$VLLM" in
        true) ROLLOUT_ARGS=(--use_vllm true --vllm_mode colocate
                            --vllm_gpu_memory_utilization "$VLLM_GPU_MEMORY_UTILIZATION" --sleep_level 1) ;;
        false) ROLLOUT_ARGS=(--use_vllm false) ;;
        *) recipe_fail "VLLM must be true or false (got $VLLM)" ;;
    esac
    recipe_batch "$@"
    # last, once every setting is checked: GRPO drops each row's answer before sampling, so keep it as `solution`,
    # the rewards' reference (lib.py solutions)
    TRAIN="$(recipe_lib solutions "$TRAIN" "$OUTPUT_DIR/grpo_train.jsonl")"
}

# Gradient accumulation for the config's global batch; says on stderr how the global batch is made.
recipe_batch() {
    local out
    out="$(recipe_lib batch "$CONFIG" "$@")"
    BATCH_ARGS=(--gradient_accumulation_steps "${out%%$'\n'*}")
    echo "$(basename "$0"): ${out#*$'\n'}" >&2
}
