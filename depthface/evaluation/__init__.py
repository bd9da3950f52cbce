"""Evaluation: pose MAE, mesh fitting error (eq. 8), ablation tables, reports and plots."""
