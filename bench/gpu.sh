#!/usr/bin/env bash
# One GPU run, stock diffusers vs Reel's engine, random weights (nothing downloaded).
#
#   bench/gpu.sh           # one H100/H200: fits in about 8 minutes
#   bench/gpu.sh --tiny    # the same steps on tiny architectures on a CPU (checks the script)
#
# Each line runs bench/engine.py: the stock pipeline call, then the same request through Reel's
# engine on the same modules, s/step over the steps after warm-up, plus one decode, extrapolated
# to the model's default step count (--full-steps). Output-preserving settings only:
#   1. Reel, batched classifier-free guidance (one transformer call per step);
#   2. Reel, batched guidance + compiled repeated blocks + the fastest exact attention
#      (attention_backend=auto). Compiling changes the shared transformer in place, so this
#      runs last, in its own process.
# Results go into docs/benchmarks.md with the card's name (nvidia-smi below prints it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

if [[ "${1:-}" == "--tiny" ]]; then
    DEV=(--device cpu --dtype float32)
    WAN=(--random-weights tiny-wan-t2v --width 64 --height 32 --frames 9 --fps 8)
    STEPS=(--steps 3 --warmup 1 --full-steps 50)
    LTX2=(--random-weights tiny-ltx2 --width 64 --height 64 --frames 17 --fps 8)
    COMPILE=()  # no compiler toolchain needed for the check
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    DEV=(--device cuda --dtype bfloat16)
    # Wan2.1-T2V-1.3B at its native 832x480, 81 frames (sequence 32,760 tokens), CFG 5, 50 steps.
    WAN=(--random-weights wan2.1-1.3b --width 832 --height 480 --frames 81 --fps 16)
    STEPS=(--steps 12 --warmup 2 --full-steps 50)
    # LTX-2 at 720p (1280x704: a multiple of 32), 121 frames at 24 fps, 30 default steps.
    LTX2=(--random-weights ltx2-19b --width 1280 --height 704 --frames 121 --fps 24)
    COMPILE=(--compile --attention-backend auto)
fi
"$PY" -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)"

echo "== Wan2.1-1.3B: stock vs Reel (batched guidance)"
"$PY" bench/engine.py "${WAN[@]}" "${DEV[@]}" "${STEPS[@]}" --batch-guidance
echo "== Wan2.1-1.3B: stock vs Reel (batched guidance, compiled blocks, attention auto)"
"$PY" bench/engine.py "${WAN[@]}" "${DEV[@]}" "${STEPS[@]}" --batch-guidance "${COMPILE[@]}"

# --- LTX-2 --------------------------------------------------------------------------------------
# LTX-2's prompt guidance is already one batched call per step in the stock pipeline; Reel adds
# the fastest exact attention. The same random weights drive both. Set GPU_LTX2=0 to skip.
if [[ "${GPU_LTX2:-1}" == "1" ]]; then
    echo "== LTX-2 19B at 720p: stock vs Reel (attention auto)"
    "$PY" bench/engine.py "${LTX2[@]}" "${DEV[@]}" --steps "${STEPS[1]}" --warmup "${STEPS[3]}" \
        --full-steps 30 --attention-backend auto
fi
