#!/bin/sh
# learning curve of the warm-started shape run: every kept epoch on the three shape test sets (network alone)
cd /work/runs
export OMP_NUM_THREADS=1
for e in "$@"; do
  for d in s_test_clean s_test_kin s_test_tof; do
    /work/main/.venv/bin/depthface eval shape --ckpt /work/runs/shape_ft/epochs/epoch_00$e.pt --data /work/data/$d \
      --split all --out /work/runs/shape_ft_eval/e$e/$d 2>&1 | grep "network:" | sed "s|^|e$e $d |"
  done
done
