"""Synthetic data engine: renderer, samples and profiles (SynData1/2/3), the scene context (``context``) and
the sensor families that measure it (``sensors``; ``sensor`` pairs them into named simulations), sharded
resumable storage and the torch datasets that read it. docs/architecture.md maps the modules."""
