#!/bin/bash
# (run from the repository root; data/ made by the commands of docs/models.md; s_src_kin: depthface synth --profile syndata1 --sensor kinect_v1 --out data/s_src_kin --seed 2000)
# the fair ablation at 4,500 source images (1 epoch, source-limit 4500): AR-GAN is ~7x the cost of source-only here
D=$(pwd)/data
mkdir -p runs/ablation_shape && cd runs/ablation_shape
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
DF=depthface
COMMON="--source $D/s_src_clean --source-limit 4500 --preset small --epochs 1 --batch-size 32 --shape-output coefficients"
train() { name=$1; shift; grep -q "trained" $name.log 2>/dev/null && return; $DF train shape --out $name $COMMON "$@" > $name.log 2>&1; }
lane1() {
  train ar_fair_s0 --target $D/s_src_kin --bn-updates source --r-input feature --seed 0
  train so_fair_s0 --lambda1 0 --lambda2 0 --r-input feature --seed 0
}
lane2() {
  train ar_fair_s1 --target $D/s_src_kin --bn-updates source --r-input feature --seed 1
  train so_fair_s1 --lambda1 0 --lambda2 0 --r-input feature --seed 1
}
lane1 > lane1.log 2>&1 &
lane2 > lane2.log 2>&1 &
wait
echo done > ALL_DONE
