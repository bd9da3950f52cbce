"""Sensor measurement models, one module per sensor family: what a sensor makes of a scene's depth.

* :mod:`.structured_light`: Kinect v1-like (projector shadow, disparity noise and quantisation, ...);
* :mod:`.time_of_flight`: Kinect v2 / Azure Kinect-like (amplitude-dependent noise, mixed pixels, ...).

A new family is a frozen dataclass subclassing :class:`SensorProfile` with a ``measure`` method (and a
preset in :data:`depthface.synth.sensor.SIMULATION_PRESETS`); :mod:`.kernels` holds the shared numba parts.
"""

from depthface.synth.sensors.base import BASE_MARGIN_PX, SensorProfile
from depthface.synth.sensors.structured_light import StructuredLightProfile
from depthface.synth.sensors.time_of_flight import TimeOfFlightProfile

#: family name -> class (a manifest names the family when it is not structured light)
FAMILIES: dict[str, type[SensorProfile]] = {c.family: c for c in (StructuredLightProfile, TimeOfFlightProfile)}

__all__ = ["BASE_MARGIN_PX", "FAMILIES", "SensorProfile", "StructuredLightProfile", "TimeOfFlightProfile"]
