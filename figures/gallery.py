"""Small PNG snapshots of the rendered figures, with the numbers behind them, for the README's gallery.

``python -m figures.gallery figures/out docs/gallery`` writes each ``NAME.png`` of the first
folder, scaled to at most ``WIDTH`` pixels wide, into the second, with its ``NAME.json`` and
``NAME.txt`` as they are: the numbers that the README, the notebook and docs/THEORY.md quote, and
that ``tests/docs`` check their prose against.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image

from figures import registry

WIDTH = 900


def snapshot(src_dir: Path, dst_dir: Path) -> list[Path]:
    """Scale every registered figure's PNG in ``src_dir`` into ``dst_dir`` and copy its JSON and
    caption beside it; returns the paths written.

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
        for ext in ("json", "txt"):
            written.append(Path(shutil.copyfile(src_dir / f"{name}.{ext}", dst_dir / f"{name}.{ext}")))
    return written


if __name__ == "__main__":
    for path in snapshot(Path(sys.argv[1]), Path(sys.argv[2])):
        print(path)
