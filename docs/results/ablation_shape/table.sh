#!/bin/bash
D=$(pwd)/data
mkdir -p runs/ablation_shape && cd runs/ablation_shape
export OMP_NUM_THREADS=1
depthface experiment ablation --kind shape \
  --run "source-only (eq. 4; R on F(x))=so_fair_s0" --run "source-only (eq. 4; R on F(x))=so_fair_s1" \
  --run "AR-GAN, fair (F's statistics once per iteration from the source batch; R on F(x))=ar_fair_s0" \
  --run "AR-GAN, fair (F's statistics once per iteration from the source batch; R on F(x))=ar_fair_s1" \
  --data clean=$D/s_test_clean --data "simulated Kinect=$D/s_test_kin" --data "ToF (held out)=$D/s_test_tof" \
  --out table
