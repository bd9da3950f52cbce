#!/bin/sh
DF="env PYTHONPATH=/work/wtmerge OMP_NUM_THREADS=1 /work/main/.venv/bin/python -m depthface.cli.main"
C=/work/runs/card; D=/work/data; W=/work/wtmerge/depthface/models/weights
for d in clean tof; do
  $DF eval shape --ckpt $W/shape.pt --data $D/s_test_$d --split all --out $C/shape_$d > $C/shape_$d.log 2>&1
done
$DF eval shape --ckpt /work/runs/shape_release/checkpoint.pt --data $D/s_test_kin --split all --out $C/shape_kin_fp32 > $C/shape_kin_fp32.log 2>&1
$DF eval shape --ckpt $W/shape.pt --data $D/s_test_kin --split all --limit 100 --refine pose+shape --out $C/shape_kin_refine > $C/shape_kin_refine.log 2>&1
