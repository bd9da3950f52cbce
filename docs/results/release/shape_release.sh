#!/bin/sh
# the release shape network: coefficient head, source-only (eq. 4) on clean SynData1-like frames (450 identities,
# 20 expressions) + simulated-Kinect SynData2-like frames (wide poses); see docs/models.md
cd /work/runs
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec nice -n -10 /work/main/.venv/bin/depthface train shape --source /work/data/s_src_clean --source /work/data/p_src_kin \
  --out /work/runs/shape_release --preset small --epochs 3 --lr-step-epochs 1 --batch-size 32 \
  --lambda1 0 --lambda2 0 --shape-output coefficients --seed 0
