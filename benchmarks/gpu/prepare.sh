#!/usr/bin/env bash
# Prepares this checkout for benchmarks/gpu/run.sh on the accelerator machine. Run it HERE, from the
# checkout the device tool sends (the session's own), before the device call:
#     bash benchmarks/gpu/prepare.sh
# The GPU image (Python 3.12, jax, flax, optax, chex, absl-py, pyyaml, requests, scipy, matplotlib,
# pillow, scikit-learn, torch) lacks ml-collections (every experiment's config) and mnist1d
# (imported by jax231.pipelines) and gymnax (benchmarks/bench_rl.py; it needs gymnasium and
# farama-notifications too), and nothing can be downloaded there; only the repository travels,
# not ../shared. So this script
#   1. downloads their pure-Python wheels for Python 3.12 into .whl/ (their other requirements are in
#      the image: ml-collections needs absl-py and PyYAML; mnist1d numpy, scipy, matplotlib,
#      requests; gymnax flax, jax, matplotlib, seaborn; gymnasium cloudpickle, numpy, typing-extensions);
#   2. copies ../shared/datasets/cifar10-jpeg.tar.gz into shared/datasets/ inside the checkout
#      (jax231.pipelines looks there after ../shared/datasets);
#   3. lists both in git's info/exclude (never committed) and prints the `carry` list and its size,
#      which must stay under the device tool's 64 MiB (working tree included).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

wheels=("ml-collections==1.1.0" "mnist1d==0.0.2.post1" "gymnax==1.0.1" "gymnasium==1.3.0" "farama-notifications==0.0.4")
mkdir -p .whl
for wheel in "${wheels[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$wheel"
done

archive=""
for candidate in "${JAX231_CIFAR10_ARCHIVE:-}" "$root/../shared/datasets/cifar10-jpeg.tar.gz" \
  /work/shared/datasets/cifar10-jpeg.tar.gz; do
  if [ -n "$candidate" ] && [ -f "$candidate" ]; then archive=$candidate; break; fi
done
if [ -z "$archive" ]; then
  echo "prepare.sh: expected ../shared/datasets/cifar10-jpeg.tar.gz (or \$JAX231_CIFAR10_ARCHIVE), got none" >&2
  exit 2
fi
mkdir -p shared/datasets
if ! cmp -s "$archive" shared/datasets/cifar10-jpeg.tar.gz; then
  cp "$archive" shared/datasets/cifar10-jpeg.tar.gz
fi

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
touch "$exclude"
for pattern in /.whl/ /shared/; do
  grep -qxF "$pattern" "$exclude" || echo "$pattern" >>"$exclude"
done
if [ -n "$(git status --porcelain --untracked-files=all -- .whl shared)" ]; then
  echo "prepare.sh: .whl/ or shared/ shows in git status; expected both ignored" >&2
  exit 1
fi

echo "wheels in .whl/:"
ls -1 .whl
tree_mib=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carry_mib=$(du -cb .whl shared | tail -1 | cut -f1)
total=$((tree_mib + carry_mib))
printf 'working tree %.1f MiB + carry %.1f MiB = %.1f MiB (limit 64 MiB)\n' \
  "$(echo "$tree_mib / 1048576" | bc -l)" "$(echo "$carry_mib / 1048576" | bc -l)" "$(echo "$total / 1048576" | bc -l)"
if [ "$total" -ge $((64 * 1048576)) ]; then
  echo "prepare.sh: expected under 64 MiB to travel, got $total bytes" >&2
  exit 1
fi
echo 'carry: [".whl", "shared"]'
echo 'command: bash benchmarks/gpu/run.sh'
