"""Evaluation, every kind: pose MAE and mesh fitting error (eq. 8) on stored datasets (``pose``, ``shape``,
``shape_eval``), on real datasets through the product path (``real_pose``, ``facewarehouse_eval``), the
baselines (ICP, 3DMM fit) and test-time refinement of stored predictions, the experiments that reproduce
the paper's tables (``experiments``), learning curves, the demo, reports and figures. The top library
package: it may use every other one (``depthface eval``/``experiment``/``demo`` call it)."""
