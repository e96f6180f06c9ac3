"""Data for kp3d: the embedded synthetic multi-view data set and loaders for real ones.

- ``skeleton``: the 17-joint Human3.6M order, bones, retargeting;
- ``bvh``: BVH mocap parser, forward kinematics, mapping to the 17 joints;
- ``bodies`` / ``motion`` / ``render``: per-subject bodies and clothing, procedural motion with joint
  limits, and a numpy ray caster (z-buffer, shading, textures, shadows, flicker, sensor noise);
- ``synthetic``: the cached synthetic data set on the Human3.6M camera rig (``SyntheticConfig``);
- ``background``: per-pixel median backgrounds, PSNR and error maps;
- ``datasets``: the data names (``DATA``) and the data sets, one module each (``synthetic``, ``h36m``,
  ``mpi3dhp``, ``rig``), with one sample contract (docs/architecture.md).

Submodules are imported explicitly (``from data_utils.datasets import open_dataset``); a data set at a
profile's sizes comes from ``kp3d.profiles.make_dataset``. ``data_utils`` imports from ``kp3d`` only
its bottom layer (``kp3d.cameras``, ``kp3d.geometry``, ``kp3d.metrics``; docs/architecture.md).
"""
