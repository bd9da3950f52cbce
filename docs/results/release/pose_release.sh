#!/bin/sh
# the release pose network (stage 1 only, options beyond the paper; see docs/models.md)
cd /work/runs
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

exec nice -n -10 /work/main/.venv/bin/depthface train pose --source /work/data/p_src_clean --source /work/data/p_src_kin \
  --out /work/runs/pose_release --preset small --stage 1 --epochs1 4 --batch-size 32 --lr 1e-3 \
  --rotation 6d --rotation-loss geodesic --lr-schedule cosine --augment --keep-epochs --seed 0
