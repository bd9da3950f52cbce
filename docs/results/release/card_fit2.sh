#!/bin/sh
# after the fit guard: the product path again, end-to-end speed, the fit's iteration trade-off, the learning curve
# (run after card_fit.sh; its product-path and end-to-end outputs were replaced by card_fit3.sh, after the refinement went to 5 joint iterations)
cd /work/main
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
C=/work/runs/card_fit; D=/work/data; DF=".venv/bin/depthface"
uptime > $C/load2_start.txt
for d in kin tof clean; do
  $DF eval pose --biwi $D/biwi_$d --split all --refine pose+shape --out $C/product_$d > $C/product_$d.log 2>&1
done
.venv/bin/python benchmarks/bench_end_to_end.py --threads 1 --presets small --frames 32 --rounds 1 --batches 1 16 \
    --outputs --refine pose+shape --out benchmarks/results/end_to_end_fit.json > $C/e2e.log 2>&1

(cd benchmarks && ../.venv/bin/python bench_fit.py --frames 30 --iterations 10 7 5) > $C/bench_fit_tradeoff.log 2>&1
uptime > $C/load2_end.txt
/work/runs/shape_ft_eval.sh 1 2 3 > $C/curve_123.log 2>&1
