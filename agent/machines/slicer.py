"""The filament a G-code file needs, as its slicer wrote it in a comment.

    filament_mm(b"; filament used [mm] = 1830.55\\n")     # 1830.55 (PrusaSlicer, OrcaSlicer)
    filament_mm(b";Filament used: 1.83055m\\n")           # 1830.55 (Cura)

The fallback when OctoPrint's own analysis of a file has not run yet (it analyses only while
idle). Slicers write it at the start (Cura, Simplify3D, ideaMaker) or at the end (PrusaSlicer
and its forks), so the head and the tail of a file are enough.
"""

from __future__ import annotations

import re

# (pattern, mm per unit); values may list several extruders: "1830.55, 0.00"
COMMENTS = (
    (re.compile(rb"^;\s*filament used \[mm\]\s*=\s*([\d.,\s]+)$", re.M), 1.0),  # PrusaSlicer, SuperSlicer, Orca
    (re.compile(rb"^;\s*Filament used:\s*([\d.,\sm]+)$", re.M), 1000.0),  # Cura: metres, "1.2m, 0m"
    (re.compile(rb"^;\s*Filament length:\s*([\d.]+)\s*mm", re.M), 1.0),  # Simplify3D
    (re.compile(rb"^;\s*filament used\s*=\s*([\d.]+)\s*mm", re.M), 1.0),  # Slic3r
    (re.compile(rb"^;\s*Material#\d+ Used:\s*([\d.]+)", re.M), 1.0),  # ideaMaker
)


def filament_mm(text: bytes) -> float | None:
    """The whole file's filament in mm, all extruders together; None if no slicer said."""
    for pattern, scale in COMMENTS:
        found = pattern.findall(text)
        if not found:
            continue
        values = re.findall(rb"\d+(?:\.\d+)?", b",".join(found))
        total = sum(float(v) for v in values) * scale
        if total > 0:
            return round(total, 2)
    return None
