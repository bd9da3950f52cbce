#!/bin/sh
# warm-started continuation of the release shape network (issue 12): more images at the first learning rate,
# SynData1-like simulated-Kinect source frames added (s_src_kin: other identities than every test set)
cd /work/runs
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=/work/snap_shape  # a snapshot of commit 8dbe7d1 (train shape --init)
exec nice -n 5 /work/main/.venv/bin/python -m depthface.cli.main train shape --source /work/data/s_src_clean \
  --source /work/data/s_src_kin --source /work/data/p_src_kin --init /work/runs/shape_release \
  --out /work/runs/shape_ft --preset small --epochs 6 --lr-step-epochs 4 --batch-size 32 \
  --lambda1 0 --lambda2 0 --shape-output coefficients --keep-epochs --seed 0
