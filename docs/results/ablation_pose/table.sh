#!/bin/bash
# The ablation table from the runs of train.sh (repository root): stored crops of the test sets of docs/models.md.
D=$(pwd)/data
cd runs/ablation_pose
depthface experiment ablation \
  --run "paper: quaternion + eq. 6, constant lr 1e-4, batch 16=r0_paper" \
  --run "lr 1e-3, batch 32=r1_opt" \
  --run "+ 6D rotation output=r2_6d" \
  --run "+ geodesic loss=r3_geodesic" \
  --run "+ cosine schedule=r4_cosine" \
  --run "+ augmentation (the release recipe)=r5_augment" --run "+ augmentation (the release recipe)=r5_augment_s1" \
  --run "release recipe, domain-randomised source (kinect_v1_random) instead of kinect_v1=r6_random" \
  --data clean=$D/p_test_clean --data "simulated Kinect=$D/p_test_kin" --data "ToF (held out)=$D/p_test_tof" \
  --out table
