#!/bin/sh
# run after: pack-release --pose /work/runs/pose_release
DF="env PYTHONPATH=/work/wtmerge OMP_NUM_THREADS=1 /work/main/.venv/bin/python -m depthface.cli.main"
C=/work/runs/card; D=/work/data
( for d in kin clean tof; do $DF eval pose --data $D/p_test_$d --split all --out $C/pose_$d > $C/pose_$d.log 2>&1; done
  $DF eval pose --ckpt /work/runs/pose_release/checkpoint.pt --data $D/p_test_kin --split all --out $C/pose_kin_fp32 > $C/pose_kin_fp32.log 2>&1 ) &
( for d in kin tof clean; do $DF eval pose --biwi $D/biwi_$d --split all --out $C/product_$d > $C/product_$d.log 2>&1; done
  $DF eval pose --biwi $D/biwi_kin --split all --refine pose --out $C/product_kin_refine > $C/product_kin_refine.log 2>&1 ) &
( $DF experiment learning-curve --run /work/runs/pose_release --kind pose --split test --data clean=$D/p_test_clean --data kinect=$D/p_test_kin --data tof=$D/p_test_tof --out $C/curve_pose > $C/curve_pose.log 2>&1 ) &
wait
