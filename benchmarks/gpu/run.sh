#!/usr/bin/env bash
# Every GPU measurement of the project in one call (at most 8 minutes), all tables in one file.
#
# Prepare HERE first (downloads the wheels the image lacks into .whl/, copies the CIFAR-10 archive
# into shared/datasets/; both git-ignored), then call the device tool from the repository root:
#     bash benchmarks/gpu/prepare.sh
#     run(command="bash benchmarks/gpu/run.sh", carry=[".whl", "shared"], timeout_s=600)
# Output: $OUT/gpu_tables.md (else ./gpu_tables.md, or the first argument).
#
# The GPU image has Python 3.12, jax, flax, optax, chex, absl-py, torch but no TensorFlow, TFDS,
# ml-collections, mnist1d or gymnax, and cannot download: the wheels in .whl/ (prepare.sh: those
# three, gymnasium and farama-notifications) are installed into a temporary site folder first;
# nothing here imports tensorflow(_datasets)
# (tests/test_gpu_run_sh.py runs this script with them blocked). Each step has its own time limit,
# so a slow step cannot eat the others' budget; a failed step is reported and the script goes on.
# Output is unbuffered, so a step stopped at its limit keeps the rows it printed.
#
# Budget (480 s in all; the limits below add up to 450 s, plus ~15 s of wheel install and header):
#   speedrun gpu94, 3 seeds ........ 150 s  (JPEG extract + decode ~20 CPU-s, measured here; compile ~30-60 s; 3 x ~3 s; TTA)
#   speedrun gpu94_muon, 3 seeds ... 70 s   (decoded data cached by the first; compile ~30 s)
#   bench_sweep (issue 11) ......... 80 s   (sweep of K vs K sequential runs; whole runs K = 8)
#   bench_cnn ...................... 100 s  (jax231 vs flax vs PyTorch train step, per-layer table)
#   bench_rl ....................... 50 s   (needs the gymnax wheels; reports and goes on without)
#
# JAX231_GPU_SMOKE=1 runs every step with tiny arguments on any backend (the test's mode);
# JAX231_GPU_STEPS=speedrun,cnn (names: speedrun speedrun_muon sweep cnn rl) runs only those steps.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-.}/gpu_tables.md}
mkdir -p "$(dirname "$out")"
py=${PYTHON:-python3}
smoke=${JAX231_GPU_SMOKE:-0}
export PYTHONUNBUFFERED=1 PIP_ROOT_USER_ACTION=ignore
work=$(mktemp -d "${TMPDIR:-/tmp}/jax231_gpu.XXXXXX")

if compgen -G ".whl/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" .whl/*.whl \
    || { echo "run.sh: installing .whl/*.whl failed" >&2; exit 1; }
  export PYTHONPATH="$work/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

step() {  # step NAME SECONDS TITLE COMMAND... (skipped unless NAME is in $JAX231_GPU_STEPS, when set)
  local name=$1 limit=$2 title=$3
  shift 3
  if [ -n "${JAX231_GPU_STEPS:-}" ] && [[ ",$JAX231_GPU_STEPS," != *",$name,"* ]]; then
    return 0
  fi
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

speedrun() {  # speedrun PRESET SEEDS: trains, then prints runs.md (training s without and with compilation) and tta.md
  local dir="$work/speedrun_$1" extra=()
  if [ "$smoke" = 1 ]; then  # the tiny preset with the preset's optimizer, no TTA or curves (compiles less)
    extra=(--config.tta=False --config.eval_examples=0)
    [[ $1 == *_muon ]] && extra+=(--config.optimizer=muon)
    set -- tiny "(0,)"
  fi
  "$py" -m experiments.speedrun.main --config=experiments/speedrun/config.py:"$1" --config.seeds="$2" \
    "${extra[@]}" --workdir="$dir" && cat "$dir/runs.md" "$dir/tta.md"
}
export -f speedrun
export py smoke work

if [ "$smoke" = 1 ]; then
  sweep_args=(--ks 2 --steps 2 --repeats 1 --e2e-ks 2 --e2e-steps 2 --e2e-repeats 1)
  cnn_args=(--repeats 1 --rounds 1 --nets vgg)
  rl_call="from benchmarks import bench_rl; bench_rl.device_check(ks=(1, 2), steps=200, repeats=1, algorithms=('a2c',))"
else
  sweep_args=(--ks 1,16,64,256 --steps 20 --repeats 5 --e2e-ks 8 --e2e-steps 200 --e2e-repeats 1)
  cnn_args=(--repeats 20 --rounds 5 --layers)
  rl_call="from benchmarks import bench_rl; bench_rl.device_check(ks=(1, 256, 2048), steps=2000, repeats=2)"
fi

{
  echo "# jax231 GPU measurements, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
  "$py" -c "import jax; print('jax', jax.__version__, jax.devices())"
  # CIFAR-10 to 94% (airbench recipe, bf16). Reads shared/datasets/cifar10-jpeg.tar.gz (prepare.sh;
  # or ../shared/datasets), decoded by PIL, no TensorFlow.
  step speedrun 150 "Speedrun: CIFAR-10 to 94% (gpu94, 3 seeds; time excluding and including compilation)" \
    bash -c 'speedrun "$@"' speedrun gpu94 "(0, 1, 2)"
  step speedrun_muon 70 "Speedrun with Muon on the conv filters (gpu94_muon, 3 seeds)" \
    bash -c 'speedrun "$@"' speedrun gpu94_muon "(0, 1, 2)"
  # Issue 11: K vmapped members in one program vs K sequential runs (MLPs on MNIST-1D), then whole
  # runs with compilation: run_sweep of 8 learning rates vs 8 calls of fit (each compiles).
  step sweep 80 "Sweep vs sequential runs (member-steps/s; whole runs with compilation)" \
    "$py" -m benchmarks.bench_sweep "${sweep_args[@]}"
  step cnn 100 "CNN train step: jax231 vs flax.linen + optax vs PyTorch (images/s)" \
    "$py" -m benchmarks.bench_cnn "${cnn_args[@]}"
  # gymnax travels as wheels (prepare.sh); without them this step reports the ImportError.
  step rl 50 "RL: env steps/s of K vmapped agents (DQN, A2C on CartPole-v1)" \
    "$py" -c "$rl_call"
} | tee "$out"
rm -rf "$work"
echo "tables written to $out"
