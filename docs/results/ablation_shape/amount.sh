#!/bin/bash
# The synthetic-amount rows of the fair shape ablation (supplement 3.1: 1x, 2x, 3x the target's amount): a fixed
# target of 1,500 unlabelled simulated-Kinect frames (reused 3x an epoch, as the paper does) and 1,500 / 3,000 /
# 4,500 labelled clean source frames; AR-GAN fair (same batch-norm handling and R input as source-only) and its
# source-only twin at each amount; one epoch each (so compute grows with the amount, as in the paper), seed 0.
# Run from the repository root; data/ as in docs/models.md.
D=$(pwd)/data
mkdir -p runs/ablation_shape_amount && cd runs/ablation_shape_amount
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
DF=depthface
COMMON="--source $D/s_src_clean --preset small --epochs 1 --batch-size 32 --shape-output coefficients --r-input feature --seed 0"
train() { name=$1; shift; grep -q "trained" $name.log 2>/dev/null && return; $DF train shape --out $name $COMMON "$@" > $name.log 2>&1; }
AR="--target $D/s_src_kin --target-limit 1500 --bn-updates source"
lane1() {
  train ar_1x --source-limit 1500 $AR
  train ar_2x --source-limit 3000 $AR
  train so_1x --source-limit 1500 --lambda1 0 --lambda2 0
}
lane2() {
  train ar_3x --source-limit 4500 $AR
  train so_2x --source-limit 3000 --lambda1 0 --lambda2 0
  train so_3x --source-limit 4500 --lambda1 0 --lambda2 0
}
lane1 > lane1.log 2>&1 &
lane2 > lane2.log 2>&1 &
wait
depthface experiment ablation --kind shape \
  --run "source-only 1x=so_1x" --run "source-only 2x=so_2x" --run "source-only 3x=so_3x" \
  --run "AR-GAN fair 1x=ar_1x" --run "AR-GAN fair 2x=ar_2x" --run "AR-GAN fair 3x=ar_3x" \
  --data clean=$D/s_test_clean --data "simulated Kinect=$D/s_test_kin" --data "ToF (held out)=$D/s_test_tof" \
  --out table > table.log 2>&1
echo done > ALL_DONE
