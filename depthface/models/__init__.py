"""Networks and losses: DAPoseNet and DASHapeNet (F, R, G, D), input normalisation, eq. 1-7 losses."""
