#!/usr/bin/env bash
# Every GPU measurement of the project in one call (at most 8 minutes), all tables in one file.
#
# Run on a machine with an NVIDIA GPU and JAX's CUDA build, from the repository root:
#     bash benchmarks/gpu/run.sh [OUTPUT_FILE]      (default: $OUT/gpu_tables.md, else ./gpu_tables.md)
# The GPU image has jax, flax, optax, chex and torch but no TensorFlow: every benchmark here uses
# synthetic or device-resident data and never imports tensorflow(_datasets). Each step has its own
# time limit so one slow step cannot eat the budget of the others; a failed step is reported and the
# script goes on.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-.}/gpu_tables.md}
mkdir -p "$(dirname "$out")"

step() {  # step SECONDS TITLE COMMAND...
  local limit=$1 title=$2
  shift 2
  echo
  echo "## $title"
  echo
  echo "\`$*\`"
  echo
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | grep -v -E "^(WARNING|I0000|W0000)" || echo "(step failed or timed out after $((SECONDS - start)) s)"
  echo
  echo "_($((SECONDS - start)) s)_"
}

{
  echo "# jax231 GPU measurements, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
  python -c "import jax; print('jax', jax.__version__, jax.devices())"
  # Budget (480 s in all): bench_cnn 200 s, RL 100 s, speedrun 160 s, 20 s of start-up and margin.
  step 200 "CNN train step: jax231 vs flax.linen + optax vs PyTorch (images/s)" \
    python -m benchmarks.bench_cnn --repeats 20 --rounds 5 --layers
  # gymnax is not in the GPU image (it cannot be installed there: no network); the step reports that
  # and the script goes on. With gymnax present it gives env steps/s for 1 to 2,048 vmapped agents.
  step 100 "RL: env steps/s of K vmapped agents (DQN, A2C on CartPole-v1)" \
    python -c "from benchmarks import bench_rl; bench_rl.device_check()"
  # CIFAR-10 to 94% (airbench recipe, bf16): 3 seeds; prints runs.md (training s without compilation,
  # and with it) and tta.md. Needs ../shared/datasets/cifar10-jpeg.tar.gz (decoded by PIL, no TensorFlow).
  step 160 "Speedrun: CIFAR-10 to 94% (gpu94, 3 seeds; time excluding and including compilation)" \
    sh -c 'python -m experiments.speedrun.main --config=experiments/speedrun/config.py:gpu94 \
      --config.seeds="(0, 1, 2)" --workdir="${TMPDIR:-/tmp}/speedrun_gpu94" \
      && cat "${TMPDIR:-/tmp}/speedrun_gpu94/runs.md" "${TMPDIR:-/tmp}/speedrun_gpu94/tta.md"'
} | tee "$out"
echo "tables written to $out"
