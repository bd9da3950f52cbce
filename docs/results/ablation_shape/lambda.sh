#!/bin/bash
# The lambda1 rows of the fair shape ablation (seed 0; repository root, after train.sh's data).
D=$(pwd)/data
mkdir -p runs/ablation_shape && cd runs/ablation_shape
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
COMMON="--source $D/s_src_clean --source-limit 4500 --preset small --epochs 1 --batch-size 32 --shape-output coefficients --target $D/s_src_kin --bn-updates source --r-input feature --seed 0"
depthface train shape --out ar_fair_l001 $COMMON --lambda1 0.01 > ar_fair_l001.log 2>&1 &
depthface train shape --out ar_fair_l01 $COMMON --lambda1 0.1 > ar_fair_l01.log 2>&1 &
wait
