#!/usr/bin/env bash
# The GPU check in one run: build against PyTorch's CUDA libtorch, prove parity on the GPU with
# the bundled fixtures (fp32, recorded tolerances), then measure throughput at 336 and 768 px
# for fp32 and bf16 with several batch sizes, and compare bf16 and batched label maps with
# unbatched fp32 on the same images; then the Dense CRF on the GPU: images/s with 21, 60 and
# 172 channels and its labels' agreement with the exact CPU CRF.
#
#   scripts/vendor_headers.sh            # once, on a machine with the Debian packages
#   scripts/gpu_check.sh [LOG_DIR]       # on the GPU machine (needs python3 with torch, cmake)
#
# Every step's output goes to LOG_DIR/gpu_check.log (default build-gpu/); a failing step is
# reported and the remaining steps still run. Builds and outputs go to build-gpu/.
set -uo pipefail
cd "$(dirname "$0")/.."
logdir="${1:-build-gpu}"
out=build-gpu
mkdir -p "$logdir" "$out"
log="$logdir/gpu_check.log"
: >"$log"
step() {  # step NAME TIMEOUT_S COMMAND...
  local name=$1 limit=$2
  shift 2
  echo "=== $name ($(date +%T))" | tee -a "$log"
  local start=$SECONDS
  timeout "$limit" "$@" >>"$log" 2>&1
  local rc=$?
  echo "=== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$log"
  return $rc
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$log" 2>&1
prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' >>"$log" 2>&1
step configure 300 cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DPNPOVSS_BUILD_TESTS=OFF -DPNPOVSS_WITH_MPI=OFF || { tail -40 "$log"; exit 1; }
step build 420 cmake --build build-gpu -j"$(nproc)" --target pnp-ovss ||
  { grep -E "error|Error" "$log" | head -40; exit 1; }
step build-bench 300 cmake --build build-gpu -j"$(nproc)" --target bench_throughput bench_bridgetower bench_tensor_crf ||
  grep -E "error|Error" "$log" | head -20

bin=build-gpu/pnp-ovss
step parity-cuda-fp32 120 "$bin" check tests/data/blip_itm tests/data/bridgetower_itm tests/data/pipeline \
  tests/data/pipeline_paper --device cuda
# Expected to exceed the fp32 tolerances; the errors show the size of bf16 rounding.
step parity-cuda-bf16 120 "$bin" check tests/data/blip_itm tests/data/bridgetower_itm --device cuda --dtype bf16
tiny=(--model tests/data/blip_itm --size 64 --layer 2 --head 3)
images="tests/data/images/coco_000000039769.png tests/data/images/coco_000000004016.png"
step segment-cuda 120 "$bin" segment $images --classes "cat, remote control, couch" \
  "${tiny[@]}" --device cuda --batch-size 4 --out "$out/segment_cuda"
step segment-cpu 120 "$bin" segment $images --classes "cat, remote control, couch" \
  "${tiny[@]}" --out "$out/segment_cpu"
step segment-bridgetower-cuda 120 "$bin" segment $images --classes "cat, remote control, couch" \
  --model tests/data/bridgetower_itm --size 64 --layer 1 --head 3 --device cuda --dtype bf16 --batch-size 2 \
  --out "$out/segment_bridgetower_cuda"
# Informational: fp32 on the GPU may round differently at near-tie pixels.
step segment-same-labels 30 bash -c "for f in $out/segment_cpu/*.labels.png; do cmp \"\$f\" \"$out/segment_cuda/\$(basename \"\$f\")\" && echo \"identical \$(basename \"\$f\")\"; done"

bench=build-gpu/bench/bench_throughput
threads=$(nproc)
step bench-336 300 "$bench" --device cuda --dtypes fp32,bf16 --sizes 336 --batch-sizes 1,16,64,128 --images 128 \
  --compare 8 --threads "$threads"
step bench-768 240 "$bench" --device cuda --dtypes fp32,bf16 --sizes 768 --batch-sizes 1,8,16 --images 32 \
  --compare 4 --threads "$threads"
# Post-processing (blur) on the CPU while the GPU runs the next batch, against one after the other.
step bench-overlap 150 "$bench" --device cuda --dtypes bf16 --sizes 336 --batch-sizes 32 --images 128 \
  --postprocess blur --overlap auto,off --threads "$threads"
# BridgeTower: one forward and one forward + backward (one GradCAM pass) at 294 and 576 px.
for dtype in fp32 bf16; do
  step "bench-bridgetower-$dtype" 90 build-gpu/bench/bench_bridgetower --device cuda --dtype "$dtype" --runs 5 --size 576
done
# The Dense CRF as tensor operations on the GPU against the exact CRF on this machine's CPU.
step bench-tensor-crf 300 build-gpu/bench/bench_tensor_crf --device cuda --runs 5
step bench-tensor-crf-1280 300 build-gpu/bench/bench_tensor_crf --device cuda --runs 3 --long-side 1280 \
  --datasets voc20,coco_stuff171
grep -E "^===|passed|images/s|agree|^cuda|identical|^(294|576) |^(photo|voc20|context59|coco_stuff171) " "$log"
