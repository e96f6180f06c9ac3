"""kp3d: unsupervised 3D keypoint discovery with multi-view geometry (Honari et al.).

Modules are imported explicitly (``from kp3d import geometry``) so that importing the package stays
cheap and a notebook pulls in only what it uses. Conventions: millimetres, world z up,
world-to-camera ``x_cam = R X + t``, OpenCV pixel centres (see docs/architecture.md).
"""

__version__ = "0.1.0"
