"""Networks and losses: DAPoseNet and DASHapeNet (F, R, G, D) and their sizes (``NetConfig``), input
normalisation, eq. 1-7 losses, ONNX export and the release weights that ship in the package."""
