"""Synthetic data engine: renderer, samples and profiles (SynData1/2/3), the scene context (``context``) and
the sensor families that measure it (``sensors``; ``sensor`` pairs them into named simulations), sharded
resumable storage (the depthface dataset format) and the torch datasets that read it, and the conversions
between that format and the real layouts (``export``: ``data export``; ``real_import``: ``data import``).
docs/architecture.md maps the modules."""
