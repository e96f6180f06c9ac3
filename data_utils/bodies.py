"""Per-subject body proportions and clothing for the synthetic data set.

Seven subjects mirror Human3.6M's split (train S1, S5, S6, S7, S8; test S9, S11). Each has its own
stature, build (limb thickness), limb ratios and clothing: a colour and a texture (plain, stripes,
checks or dots) per garment. Lengths are millimetres.

Example:
    >>> from data_utils.bodies import subject_body
    >>> body = subject_body("S9")
    >>> round(body.height), body.bone_lengths().shape
    (1696, (16,))
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
SUBJECTS = TRAIN_SUBJECTS + TEST_SUBJECTS

# texture kinds understood by data_utils.render
PATTERNS = ("plain", "stripes", "checks", "dots")


@dataclass(frozen=True)
class Garment:
    """Colour and texture of one body region (RGB in [0, 1])."""

    color: tuple[float, float, float]
    pattern: str = "plain"  # one of PATTERNS
    color2: tuple[float, float, float] = (1.0, 1.0, 1.0)  # pattern colour
    period: float = 80.0  # mm between stripes / checks / dots


@dataclass(frozen=True)
class Body:
    """Proportions (mm) and clothing of one synthetic subject.

    The skeleton lengths give the 17 H36M joints; the radii dress them with capsules and ellipsoids.
    """

    name: str
    height: float = 1750.0  # stature, top of head to floor
    hip_half_width: float = 130.0  # pelvis to each hip joint
    thigh: float = 440.0
    shin: float = 430.0
    ankle_height: float = 75.0  # ankle joint above the floor when standing
    pelvis_spine: float = 230.0
    spine_thorax: float = 250.0
    thorax_neck: float = 110.0
    neck_head: float = 120.0
    shoulder_half_width: float = 160.0
    shoulder_drop: float = 25.0  # shoulders below the thorax joint
    upper_arm: float = 280.0
    forearm: float = 250.0
    # thickness (capsule radii / ellipsoid semi-axes)
    thigh_radius: float = 75.0
    shin_radius: float = 52.0
    upper_arm_radius: float = 45.0
    forearm_radius: float = 36.0
    torso_half_width: float = 165.0
    torso_half_depth: float = 110.0
    head_radius: float = 95.0
    neck_radius: float = 45.0
    foot_length: float = 220.0
    # clothing per region: shirt (torso, upper arms), sleeves (forearms), trousers (thighs, hips),
    # legs (shins), shoes, skin (hands, neck, face), hair
    clothing: dict = field(default_factory=dict)

    def bone_lengths(self) -> np.ndarray:
        """(16,) lengths in ``data_utils.skeleton.H36M_BONES`` order."""
        sh = float(np.hypot(self.shoulder_half_width, self.shoulder_drop))
        return np.array([
            self.hip_half_width, self.thigh, self.shin,
            self.hip_half_width, self.thigh, self.shin,
            self.pelvis_spine, self.spine_thorax, self.thorax_neck, self.neck_head,
            sh, self.upper_arm, self.forearm, sh, self.upper_arm, self.forearm,
        ])


_PALETTE = np.array([
    [0.80, 0.15, 0.15], [0.15, 0.35, 0.75], [0.15, 0.55, 0.25], [0.90, 0.75, 0.20],
    [0.55, 0.25, 0.60], [0.95, 0.50, 0.15], [0.20, 0.20, 0.25], [0.85, 0.85, 0.80],
    [0.35, 0.70, 0.75], [0.50, 0.32, 0.20], [0.75, 0.40, 0.55], [0.40, 0.45, 0.20],
])
_SKIN = np.array([[0.94, 0.76, 0.62], [0.80, 0.60, 0.45], [0.55, 0.38, 0.26], [0.36, 0.24, 0.16]])


def _garment(rng: np.random.Generator, avoid: int | None = None, pattern: str | None = None) -> tuple[Garment, int]:
    i = int(rng.integers(len(_PALETTE)))
    while i == avoid:
        i = int(rng.integers(len(_PALETTE)))
    j = (i + int(rng.integers(2, len(_PALETTE) - 1))) % len(_PALETTE)
    c = np.clip(_PALETTE[i] + rng.normal(0, 0.05, 3), 0, 1)
    pattern = pattern or PATTERNS[int(rng.integers(len(PATTERNS)))]
    return Garment(tuple(c), pattern, tuple(_PALETTE[j]), float(rng.uniform(60, 130))), i


def make_body(name: str, seed: int, patterns: tuple[str | None, str | None] = (None, None)) -> Body:
    """A random but plausible body: stature 1.55-1.90 m, build and limb ratios varied per seed.

    ``patterns`` fixes the (shirt, trousers) textures; None draws them at random.
    """
    rng = np.random.default_rng(seed)
    height = rng.uniform(1550, 1900)
    s = height / 1750.0
    build = rng.uniform(0.8, 1.3)  # limb and torso thickness
    leg = rng.uniform(0.95, 1.05)  # leg-to-torso ratio
    arm = rng.uniform(0.95, 1.05)
    shirt, i = _garment(rng, pattern=patterns[0])
    trousers, _ = _garment(rng, avoid=i, pattern=patterns[1])
    skin = _SKIN[int(rng.integers(len(_SKIN)))]
    clothing = {
        "shirt": shirt,
        "sleeves": shirt if rng.random() < 0.5 else Garment(tuple(skin)),  # long or short sleeves
        "trousers": trousers,
        "legs": trousers if rng.random() < 0.7 else Garment(tuple(skin)),  # trousers or shorts
        "shoes": Garment(tuple(_PALETTE[int(rng.integers(len(_PALETTE)))] * 0.5)),
        "skin": Garment(tuple(skin)),
        "hair": Garment(tuple(rng.uniform(0.05, 0.45) * np.array([1.0, 0.8, 0.6]))),
    }
    thigh, shin = 440 * s * leg, 430 * s * leg
    body = Body(
        name=name, height=height, hip_half_width=130 * s * build ** 0.5, thigh=thigh, shin=shin,
        ankle_height=75 * s, pelvis_spine=230 * s / leg, spine_thorax=250 * s / leg,
        thorax_neck=110 * s, neck_head=120 * s, shoulder_half_width=160 * s * build ** 0.3,
        upper_arm=280 * s * arm, forearm=250 * s * arm, thigh_radius=75 * s * build,
        shin_radius=52 * s * build, upper_arm_radius=45 * s * build, forearm_radius=36 * s * build,
        torso_half_width=165 * s * build ** 0.7, torso_half_depth=110 * s * build,
        head_radius=95 * s, neck_radius=45 * s * build, foot_length=220 * s, clothing=clothing,
    )
    # the stature follows from the chain; store it (floor to the top of the head)
    top = body.ankle_height + thigh + shin + body.pelvis_spine + body.spine_thorax + body.thorax_neck \
        + body.neck_head + 0.6 * body.head_radius
    return Body(**{**body.__dict__, "height": float(top)})


def subject_body(subject: str, seed: int = 0) -> Body:
    """The body of one synthetic subject (deterministic in ``subject`` and ``seed``).

    Shirt and trouser textures rotate through ``PATTERNS`` over the subjects, so the training and
    test subjects wear every kind of texture.
    """
    if subject not in SUBJECTS:
        raise ValueError(f"unknown synthetic subject {subject!r}: expected one of {', '.join(SUBJECTS)}")
    k = SUBJECTS.index(subject) + seed
    patterns = (PATTERNS[k % len(PATTERNS)], PATTERNS[(k + 2) % len(PATTERNS)])
    return make_body(subject, seed * 1000 + SUBJECTS.index(subject) + 1, patterns)
