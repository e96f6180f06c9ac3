"""The room the synthetic people stand in: walls, floor and ceiling with procedural textures
(:func:`make_room`), and the rays that hit them (:func:`trace_room`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Room:
    """A box room (world mm): floor z = 0, walls at x = +-half_x, y = +-half_y, ceiling at height."""

    half_x: float
    half_y: float
    height: float
    floor_colors: np.ndarray  # (2, 3) tile tones
    tile: float  # tile side, mm
    wall_colors: np.ndarray  # (4, n_panels, 3) panel colours per wall (-x, +x, -y, +y)
    panel_edges: np.ndarray  # (4, n_panels + 1) panel boundaries along each wall in [0, 1]
    posters: np.ndarray  # (P, 8): wall index, u0, u1, z0, z1 (mm), r, g, b
    noise: np.ndarray  # (64, 64) value-noise lattice


def make_room(seed: int = 0) -> Room:
    """A random room; same seed -> same room."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.45, 0.7) * np.array([1.0, rng.uniform(0.85, 1.0), rng.uniform(0.7, 0.95)])
    floor = np.stack([base, base * rng.uniform(0.75, 0.9)])
    n_panels = 6
    walls = np.clip(rng.uniform(0.25, 0.85, (4, n_panels, 3)) * 0.6
                    + rng.uniform(0.3, 0.8, (4, 1, 1)) * 0.4, 0, 1)
    edges = np.sort(rng.uniform(0, 1, (4, n_panels - 1)), axis=1)
    edges = np.concatenate([np.zeros((4, 1)), edges, np.ones((4, 1))], 1)
    posters = []
    for w in range(4):
        for _ in range(5):
            u0 = rng.uniform(0.05, 0.85)
            z0 = rng.uniform(400, 1800)
            posters.append([w, u0, u0 + rng.uniform(0.03, 0.12), z0, z0 + rng.uniform(300, 1200),
                            *rng.uniform(0.05, 0.95, 3)])
    return Room(half_x=4500.0, half_y=7000.0, height=3500.0, floor_colors=floor,
                tile=float(rng.uniform(450, 700)), wall_colors=walls, panel_edges=edges,
                posters=np.array(posters), noise=rng.uniform(-1, 1, (64, 64)))


def value_noise(lattice: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smooth noise in [-1, 1] at lattice coordinates (u, v) (periodic over the lattice size)."""
    n = lattice.shape[0]
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fu, fv = u - iu, v - iv
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    a = lattice[iu % n, iv % n]
    b = lattice[(iu + 1) % n, iv % n]
    c = lattice[iu % n, (iv + 1) % n]
    d = lattice[(iu + 1) % n, (iv + 1) % n]
    return (a * (1 - fu) + b * fu) * (1 - fv) + (c * (1 - fu) + d * fu) * fv


def _room_color(room: Room, p: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Albedo of room points p (P, 3) lying on surface ``which`` (P,) (0..3 walls, 4 floor, 5 ceiling)."""
    col = np.empty(p.shape)
    fl = which == 4
    if fl.any():
        x, y = p[fl, 0], p[fl, 1]
        checker = (np.floor(x / room.tile) + np.floor(y / room.tile)).astype(int) % 2
        c = room.floor_colors[checker]
        gx = np.abs((x / room.tile) - np.round(x / room.tile)) * room.tile
        gy = np.abs((y / room.tile) - np.round(y / room.tile)) * room.tile
        grout = (np.minimum(gx, gy) < 12)[:, None]
        c = np.where(grout, c * 0.55, c)
        stain = value_noise(room.noise, x / 700 + 3.1, y / 700) + 0.5 * value_noise(room.noise, x / 180, y / 180 + 7)
        col[fl] = c * (1 + 0.1 * stain[:, None])
    ce = which == 5
    col[ce] = 0.8
    for w in range(4):
        m = which == w
        if not m.any():
            continue
        along = p[m, 1] if w < 2 else p[m, 0]
        half = room.half_y if w < 2 else room.half_x
        s = (along + half) / (2 * half)
        k = np.clip(np.searchsorted(room.panel_edges[w], s) - 1, 0, room.wall_colors.shape[1] - 1)
        c = room.wall_colors[w, k].copy()
        z = p[m, 2]
        for q in room.posters[room.posters[:, 0] == w]:
            inside = (s > q[1]) & (s < q[2]) & (z > q[3]) & (z < q[4])
            c[inside] = q[5:8]
        c[z < 150] *= 0.5  # skirting band
        c *= (1 + 0.08 * value_noise(room.noise, along / 400, z / 400 + 11))[:, None]
        col[m] = c
    return np.clip(col, 0, 1)


def trace_room(room: Room, origin: np.ndarray, dirs: np.ndarray):
    """Where rays (P, 3) from ``origin`` leave the room: points (P, 3) and surface ids (P,)."""
    bounds = np.array([[-room.half_x, room.half_x], [-room.half_y, room.half_y], [0.0, room.height]])
    with np.errstate(divide="ignore", invalid="ignore"):
        tt = np.where(dirs > 0, (bounds[:, 1] - origin) / dirs, (bounds[:, 0] - origin) / dirs)
    tt = np.where(np.isfinite(tt) & (tt > 0), tt, np.inf)
    axis = np.argmin(tt, axis=1)
    tmin = tt[np.arange(len(dirs)), axis]
    pos_side = dirs[np.arange(len(dirs)), axis] > 0
    # ids: wall -x 0, +x 1 (planes x = const), -y 2, +y 3, floor 4, ceiling 5
    which = np.where(axis == 0, pos_side.astype(int), np.where(axis == 1, 2 + pos_side, np.where(pos_side, 5, 4)))
    return origin + tmin[:, None] * dirs, which


