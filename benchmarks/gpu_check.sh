#!/usr/bin/env bash
# One-call GPU check (issue 5): device, sandwich-step throughput of the attentivenas space on
# synthetic 224px data (bf16 mixed precision, channels-last), the elastic-overhead ratio and the
# sandwich-step cost ratio on the GPU. Runs in a few minutes on one GPU; prints markdown tables
# and writes them to ${OUT:-benchmarks}/gpu_check.md (paste them into benchmarks/RESULTS.md).
#
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-benchmarks}/gpu_check.md"
{
  echo "## GPU check ($(date -u +%Y-%m-%d))"
  echo
  echo '`bash benchmarks/gpu_check.sh`'
  echo
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/device: /'
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  echo
  python benchmarks/gpu_throughput.py --space attentivenas --image-size 224 --batch 128 --steps 25
  echo
  python - <<'PY'
import sys, torch
sys.path.insert(0, "benchmarks")
from common import machine, markdown_table
from elastic_overhead import HEADER, run
rows = run("attentivenas", 64, 20, "cuda", channels_last=True, dtype=torch.bfloat16)
print(f"elastic overhead (fwd+bwd, bf16, channels-last), attentivenas, batch 64; device={machine()}")
print(markdown_table(HEADER, rows))
PY
  echo
  python benchmarks/step_cost.py --space attentivenas --batch 64 --steps 8 --device cuda
} 2>&1 | grep -v -E "^(INFO|LOCAL_RANK|GPU available|TPU available|HPU available|💡|.*UserWarning|  warnings.warn|.*pytree)" | tee "$out"
