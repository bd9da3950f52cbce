"""Real depth datasets: readers, writers, splits, inspection; and the shared preprocessing path (automatic
head localisation, metric crop, position image) that every frame takes, real or synthetic.

Readers are lazy and indexable (``ds[i]`` reads one frame) and return :class:`Frame` records in
depthface's conventions (mm, OpenCV camera frame, head-to-camera pose ``p_cam = R p_head + t``):
:class:`BiwiDataset`, :class:`ICT3DHPDataset`; :class:`FaceWarehouseDataset` returns ground-truth
meshes. Each format module also has writers that produce files the readers read back exactly, and
:mod:`depthface.data.splits` holds the evaluation splits (:func:`open_real_split` picks one by
name). Bad files raise a one-line :class:`depthface.errors.InputError` naming the file. Imports nothing of
:mod:`depthface.synth` (the depthface dataset format is synth's).
"""

from depthface.data.biwi import BIWI_SEQUENCE_TO_SUBJECT, BIWI_SUBJECTS, BiwiDataset, write_biwi_frame
from depthface.data.facewarehouse import FaceWarehouseDataset, FaceWarehouseSample
from depthface.data.frames import Frame, FrameDataset, FrameKey
from depthface.data.ict3dhp import ICT3DHPDataset, write_ict3dhp_sequence
from depthface.data.splits import (
    REAL_SPLITS,
    Split,
    biwi_group1_split,
    biwi_group2_split,
    facewarehouse_split,
    ict3dhp_split,
    open_real_split,
)

__all__ = [
    "Frame", "FrameDataset", "FrameKey", "BiwiDataset", "BIWI_SEQUENCE_TO_SUBJECT", "BIWI_SUBJECTS",
    "write_biwi_frame", "ICT3DHPDataset", "write_ict3dhp_sequence", "FaceWarehouseDataset",
    "FaceWarehouseSample", "Split", "biwi_group1_split", "biwi_group2_split", "ict3dhp_split",
    "facewarehouse_split", "REAL_SPLITS", "open_real_split",
]
