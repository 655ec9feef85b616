"""The filament a G-code file needs, read from its slicer's comment (the fallback estimate).

Formats as each slicer writes them: PrusaSlicer ``src/libslic3r/GCode.cpp`` (``; filament used
[mm] = ``, one value per extruder), Cura's header (``;Filament used: 1.2m``), Simplify3D's build
summary (``;   Filament length: … mm``), ideaMaker (``;Material#1 Used: ``).
"""

from __future__ import annotations

import pytest

from agent.machines.slicer import filament_mm


@pytest.mark.parametrize(
    ("text", "mm"),
    [
        (b"G1 X1\n; filament used [mm] = 1830.55\n; filament used [g] = 5.46\n", 1830.55),
        (b"; filament used [mm] = 1000.00, 250.50\n", 1250.5),
        (b";FLAVOR:Marlin\n;TIME:3600\n;Filament used: 1.83055m\n", 1830.55),
        (b";Filament used: 1.2m, 0.3m\n", 1500.0),
        (b";   Filament length: 4521.3 mm (4.52 m)\n", 4521.3),
        (b";Material#1 Used: 812.4\n", 812.4),
        (b"G28\nG1 X10\n", None),
        (b"; filament used [mm] = 0.00\n", None),
    ],
)
def test_slicer_comments(text: bytes, mm: float | None) -> None:
    assert filament_mm(text) == mm
