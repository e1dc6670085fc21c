"""Writing a figure's files: PNG and PDF, the numbers behind it (JSON) and its caption.

Every file is replaced atomically; the JSON records the versions of the toolkit and libraries.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from synthetic.provenance import environment, plain, write_atomic


def save_figure(fig, out_dir: Path, name: str, data: dict, caption: str) -> dict[str, Path]:
    """Save ``name``.png/.pdf, ``name``.json (config, seed, arrays) and ``name``.txt (caption)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{name}.{ext}" for ext in ("png", "pdf", "json", "txt")}
    for ext in ("png", "pdf"):
        tmp = out_dir / f".{name}.tmp.{ext}"
        fig.savefig(tmp)
        os.replace(tmp, paths[ext])
    payload = {"figure": name, "environment": environment(), "caption": caption, **plain(data)}
    write_atomic(paths["json"], json.dumps(payload, indent=1).encode())
    write_atomic(paths["txt"], (caption.strip() + "\n").encode())
    return paths
