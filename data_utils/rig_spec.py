"""The data spec of a user's own rig: ``"rig:PATH?key=value&..."``, the string that ``kp3d-train
--data``, the notebooks' ``DATA`` and ``kp3d.replicate -p DATA`` take.

The options after ``?`` are the :class:`data_utils.rig.RigDataset` arguments of the same names, so
that every entry point reaches them: ``trim`` (true/false), ``cameras`` (comma-separated names),
``backgrounds`` (a folder), ``units`` (auto, m, mm), ``up_axis`` (auto, z, -z, y, -y, x, -x) and
``max_frames`` (keep the first N frames: the readable part of a video cut short) and ``crop_edge``
(centre, start, end: where a video smaller than its calibration was cut). Pure string
handling: nothing here reads the folder.

Example:
    >>> parse_rig_spec("rig:/data/my_rig?units=m")
    ('rig:/data/my_rig', {'units': 'm'})
"""
from __future__ import annotations

from pathlib import Path

RIG_OPTIONS = ("trim", "cameras", "backgrounds", "units", "up_axis", "max_frames", "crop_edge")  # options of a "rig:PATH?..." spec


def _parse_option(spec: str, key: str, value: str):
    if key == "trim":
        low = value.strip().lower()
        if low not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError(f"data={spec!r}: trim={value!r}, expected true or false")
        return low in ("1", "true", "yes", "on")
    if key == "cameras":
        names = [n.strip() for n in value.split(",") if n.strip()]
        if not names:
            raise ValueError(f"data={spec!r}: cameras= is empty; list camera names, e.g. cameras=cam1,cam3")
        return names
    if key == "backgrounds":
        return str(Path(value).expanduser())
    if key == "crop_edge":
        edge = value.strip().lower()
        if edge not in ("centre", "start", "end"):
            raise ValueError(f"data={spec!r}: crop_edge={value!r}, expected centre, start or end")
        return edge
    if key == "max_frames":
        try:
            n = int(str(value).strip())
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"data={spec!r}: max_frames={value!r}, expected a whole number of frames >= 1")
        return n
    return value.strip()


def parse_rig_spec(spec: str) -> tuple[str, dict]:
    """Split ``"rig:PATH?key=value&..."`` into ``("rig:PATH", options)``.

    Options (:data:`RIG_OPTIONS`, the :class:`RigDataset` arguments of the same names): ``trim``
    (true/false), ``cameras`` (comma-separated names), ``backgrounds`` (a folder), ``units``
    (auto, m, mm), ``up_axis`` (auto, z, -z, y, -y, x, -x), ``max_frames`` (a whole number) and
    ``crop_edge`` (centre, start, end). An
    unknown key raises.

    Example:
        >>> parse_rig_spec("rig:/data/my_rig?trim=true&cameras=cam1,cam3")
        ('rig:/data/my_rig', {'trim': True, 'cameras': ['cam1', 'cam3']})
    """
    base, sep, query = str(spec).partition("?")
    options = {}
    for item in filter(None, query.split("&")) if sep else ():
        key, eq, value = item.partition("=")
        key = key.strip()
        if key not in RIG_OPTIONS or not eq:
            raise ValueError(f"data={spec!r}: {item!r} is not a rig option; expected key=value with a key among "
                             f"{', '.join(RIG_OPTIONS)} (e.g. rig:/data/my_rig?trim=true&cameras=cam1,cam3)")
        options[key] = _parse_option(spec, key, value)
    return base, options


def with_rig_options(spec: str, **options) -> str:
    """``spec`` ("rig:PATH", maybe with options already) with ``options`` added or replaced.

    Example:
        >>> with_rig_options("rig:/data/my_rig", trim=True, cameras=["cam1", "cam3"])
        'rig:/data/my_rig?trim=true&cameras=cam1,cam3'
    """
    if not str(spec).startswith("rig:"):
        raise ValueError(f"the rig options {sorted(options)} need data='rig:/path/to/folder' (--data rig:PATH), "
                         f"not data={spec!r}")
    base, current = parse_rig_spec(spec)
    for key, value in options.items():
        if key not in RIG_OPTIONS:
            raise ValueError(f"{key!r} is not a rig option: expected one of {', '.join(RIG_OPTIONS)}")
        current[key] = _parse_option(spec, key, ",".join(value) if isinstance(value, (list, tuple)) else str(value))
    parts = []
    for key in RIG_OPTIONS:
        if key in current:
            v = current[key]
            parts.append(f"{key}={'true' if v is True else 'false' if v is False else ','.join(v) if isinstance(v, list) else v}")
    return base + ("?" + "&".join(parts) if parts else "")


def rig_root(spec: str) -> Path:
    """The rig folder of ``data="rig:PATH"`` (a bare path is accepted too; options after ``?`` are
    ignored); the folder need not exist yet.

    Example:
        >>> rig_root("rig:/data/my_rig").as_posix()
        '/data/my_rig'
    """
    kind, sep, path = parse_rig_spec(spec)[0].partition(":")
    if sep and kind == "rig":
        root = path
    elif not sep or len(kind) == 1:  # a bare path (or a Windows drive letter)
        root = str(spec)
    else:
        raise ValueError(f"data={spec!r}: expected 'rig:/path/to/folder'")
    if not root:
        raise ValueError(f"data={spec!r}: give the rig folder, e.g. 'rig:/data/my_rig'")
    return Path(root).expanduser()
