#!/bin/bash
# The fair shape ablation table from the runs of train.sh and lambda.sh (repository root).
D=$(pwd)/data
mkdir -p runs/ablation_shape && cd runs/ablation_shape
export OMP_NUM_THREADS=1
depthface experiment ablation --kind shape \
  --run "source-only (eq. 4; R on F(x))=so_fair_s0" --run "source-only (eq. 4; R on F(x))=so_fair_s1" \
  --run "AR-GAN, fair, lambda1 0.03 (paper)=ar_fair_s0" --run "AR-GAN, fair, lambda1 0.03 (paper)=ar_fair_s1" \
  --run "AR-GAN, fair, lambda1 0.01=ar_fair_l001" --run "AR-GAN, fair, lambda1 0.1=ar_fair_l01" \
  --data clean=$D/s_test_clean --data "simulated Kinect=$D/s_test_kin" --data "ToF (held out)=$D/s_test_tof" \
  --out table
