#!/usr/bin/env bash
# One-call GPU check (issues 5 and 14): device; sandwich-step throughput of the attentivenas space
# on synthetic 224px data at batch 64 and 128 in fp32, bf16-mixed and bf16 + channels-last, with
# the GPU-busy fraction from a profile; the elastic-overhead ratio per child; and the sandwich
# step against the same children as static modules, in the same call. About 6 minutes on an
# H200; a part that fails prints FAILED and the others still run. Prints markdown tables and
# writes them to ${OUT:-benchmarks}/gpu_check.md (paste them into benchmarks/RESULTS.md).
#
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-benchmarks}/gpu_check.md"
part() { "$@" || echo "FAILED (exit $?): $*"; }
{
  echo "## GPU check ($(date -u +%Y-%m-%d))"
  echo
  echo '`bash benchmarks/gpu_check.sh`'
  echo
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/device: /'
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  echo
  part python benchmarks/gpu_throughput.py --space attentivenas --image-size 224 --batch 64 128 --steps 12 --profiled 2
  echo
  part python - <<'PY'
import sys, torch
sys.path.insert(0, "benchmarks")
from common import machine, markdown_table
from elastic_overhead import HEADER, run
rows = run("attentivenas", 64, 20, "cuda", channels_last=True, dtype=torch.bfloat16)
print(f"elastic overhead (fwd+bwd, bf16, channels-last), attentivenas, batch 64; device={machine()}")
print(markdown_table(HEADER, rows))
PY
  echo
  part python benchmarks/host_overhead.py --device cuda --spaces attentivenas --batch 64 --repeats 10
} 2>&1 | grep -v -E "^(INFO|LOCAL_RANK|GPU available|TPU available|HPU available|💡|.*UserWarning|  warnings.warn|.*pytree)" | tee "$out"
