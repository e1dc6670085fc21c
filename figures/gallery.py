"""Small PNG snapshots of the rendered figures, for the README's gallery.

``python -m figures.gallery figures/out docs/gallery`` writes each ``NAME.png`` of the first
folder, scaled to at most ``WIDTH`` pixels wide, into the second.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from figures import registry

WIDTH = 900


def snapshot(src_dir: Path, dst_dir: Path) -> list[Path]:
    """Scale every registered figure's PNG in ``src_dir`` into ``dst_dir``; returns the paths written.

    At most ``WIDTH`` pixels wide, 128 colours: the gallery of README.md, "Figures".

    Parameters
    ----------
    src_dir, dst_dir : Path

    Returns
    -------
    list of Path
    """
    dst_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in registry.FIGURES:
        src = src_dir / f"{name}.png"
        if not src.exists():
            continue
        with Image.open(src) as image:
            image = image.convert("RGB")
            if image.width > WIDTH:
                image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
            dst = dst_dir / f"{name}.png"
            image.quantize(colors=128).save(dst, optimize=True)
            written.append(dst)
    return written


if __name__ == "__main__":
    for path in snapshot(Path(sys.argv[1]), Path(sys.argv[2])):
        print(path)
