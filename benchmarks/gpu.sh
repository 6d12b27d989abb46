#!/bin/bash
# Issue 17's GPU figures in one go, for a GPU machine lent for minutes: ResNet-50 training
# img/s (fp32, bf16) and the explainers against PyTorch on the same card, then the demo's wall
# time. Needs the project's dependencies importable (PYTHONPATH or an install); the demo also
# needs tensorflow-cpu and tensorflow-datasets, and is skipped without them.
#   benchmarks/gpu.sh LOGDIR [train|explainers|demo ...]   (default: all three)
set -u
log=$(realpath -m "${1:-gpu_logs}"); shift
parts=${*:-train explainers demo}
mkdir -p "$log"
cd "$(dirname "$0")/.." || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
EXPLAINERS=grad_cam,grad_cam_plus_plus,guided_backprop,smoothgrad,integrated_gradients,score_cam
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$log/gpu.txt"

for part in $parts; do
  start=$(date +%s.%N)
  case $part in
    train) timeout 300 python3 benchmarks/train_step.py --gpu --modes fp32,bf16 --batch 256 \
             --repeats 5 ;;
    explainers) timeout 300 python3 benchmarks/explainers.py --gpu --batch 64 --repeats 5 \
                  --chunk 128 --only "$EXPLAINERS" ;;
    demo) python3 -c "import tensorflow_datasets" 2>/dev/null \
            || { echo "demo skipped: no tfds"; continue; }
          timeout 400 python3 -m cnnviz_jax.main --config configs/demo.py --workdir /tmp/gpu_demo \
            && cp /tmp/gpu_demo/results.json "$log/demo_results.json" ;;
  esac > "$log/$part.txt" 2>&1
  echo "$part: rc $?, $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s wall" \
    | tee -a "$log/$part.txt"
  tail -25 "$log/$part.txt"
done
