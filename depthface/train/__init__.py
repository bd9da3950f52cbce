"""Training: the DAPoseNet trainer (eq. 6, then eq. 7 on target frames) and the DASHapeNet trainer (AR-GAN,
eq. 1-5), their checkpoints (atomic, resumable, release packing), devices and distributed runs, and the
on-the-fly augmentation of training crops. Reads datasets through :mod:`depthface.synth.datasets`."""
