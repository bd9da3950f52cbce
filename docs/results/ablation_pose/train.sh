#!/bin/bash
# The pose ablation of docs/models.md, run from the repository root after the data commands of docs/models.md
# (data/p_src_clean, data/p_src_kin; p_src_rand is made here). Every row: small preset, stage 1, one epoch over
# 16,000 frames of each source (32k images), one torch thread; two rows run at a time (~24 min each while the
# 2-core machine was shared). Then docs/results/ablation_pose/table.sh writes the table.
D=$(pwd)/data
mkdir -p runs/ablation_pose && cd runs/ablation_pose
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
COMMON="--preset small --stage 1 --epochs1 1 --source-limit 16000 --keep-epochs"
SRC="--source $D/p_src_clean --source $D/p_src_kin"
R6D="--rotation 6d"; GEO="--rotation-loss geodesic"; COS="--lr-schedule cosine"; OPT="--batch-size 32 --lr 1e-3"
train() { name=$1; shift; grep -q "trained" $name.log 2>/dev/null && return; depthface train pose --out $name $COMMON "$@" > $name.log 2>&1; }
laneA() {
  train r0_paper $SRC --batch-size 16 --lr 1e-4 --seed 0
  train r2_6d $SRC $OPT $R6D --seed 0
  train r4_cosine $SRC $OPT $R6D $GEO $COS --seed 0
  train r5_augment_s1 $SRC $OPT $R6D $GEO $COS --augment --seed 1
}
laneB() {
  [ -f $D/p_src_rand/manifest.json ] || depthface synth --profile syndata2 --sensor kinect_v1_random --out $D/p_src_rand --count 16000 --seed 4000 --workers 1
  train r1_opt $SRC $OPT --seed 0
  train r3_geodesic $SRC $OPT $R6D $GEO --seed 0
  train r5_augment $SRC $OPT $R6D $GEO $COS --augment --seed 0
  train r6_random --source $D/p_src_clean --source $D/p_src_rand $OPT $R6D $GEO $COS --augment --seed 0
}
laneA & laneB & wait
