"""Synthetic data engine: renderer, scenes and profiles (SynData1/2/3), Kinect sensor simulator,
sharded resumable storage and the torch datasets that read it."""
