"""Data for kp3d: the embedded synthetic multi-view data set and loaders for real ones.

- ``skeleton``: the 17-joint Human3.6M order, bones, retargeting;
- ``bvh``: BVH mocap parser, forward kinematics, mapping to the 17 joints;
- ``bodies`` / ``motion`` / ``render``: per-subject bodies and clothing, procedural motion with joint
  limits, and a numpy ray caster (z-buffer, shading, textures, shadows, flicker, sensor noise);
- ``synthetic``: the cached synthetic data set on the Human3.6M camera rig (``SyntheticConfig``);
- ``background``: per-pixel median backgrounds, PSNR and error maps;
- ``datasets``: torch data sets with one sample contract (docs/architecture.md) and ``make_dataset``.

Submodules are imported explicitly (``from data_utils.datasets import make_dataset``).
"""
