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

# Gradient accumulation for the config's global batch; says on stderr how the global batch is made.
recipe_batch() {
    local out
    out="$(recipe_lib batch "$CONFIG" "$@")"
    BATCH_ARGS=(--gradient_accumulation_steps "${out%%$'\n'*}")
    echo "$(basename "$0"): ${out#*$'\n'}" >&2
}
