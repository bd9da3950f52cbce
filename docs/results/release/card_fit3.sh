#!/bin/sh
# after REFINE_JOINT_ITERATIONS = 5: the product path, network + fit shape, end-to-end speed (idle machine)
cd /work/main
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
C=/work/runs/card_fit; D=/work/data; DF=".venv/bin/depthface"
uptime > $C/load3_start.txt
for d in kin tof clean; do
  $DF eval pose --biwi $D/biwi_$d --split all --refine pose+shape --out $C/product_$d > $C/product_$d.log 2>&1
done
for d in s_test_clean s_test_kin s_test_tof; do
  $DF eval shape --ckpt depthface/models/weights/shape.pt --pose depthface/models/weights/pose.pt --data $D/$d --split all \
      --limit 100 --refine pose+shape --out $C/shapefit_$d > $C/shapefit_$d.log 2>&1
done
.venv/bin/python benchmarks/bench_end_to_end.py --threads 1 --presets small --frames 32 --rounds 1 --batches 1 16 \
    --outputs --refine pose+shape --out benchmarks/results/end_to_end_fit.json > $C/e2e.log 2>&1
uptime > $C/load3_end.txt
