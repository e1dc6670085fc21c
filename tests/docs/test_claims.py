"""Prose is code: every measured number and direction the README, docs/THEORY.md and the notebook
state is checked against the figure JSON it is about (``tests/docs/claims.py``), the gallery's JSON
is the current code's, and no number in the results prose escapes a check or a preset label."""

from __future__ import annotations

import json
import platform
import re

import pytest

from figures import registry
from figures.cache import code_fingerprint
from tests.docs.claims import CLAIMS as FIGURE_CLAIMS
from tests.docs.claims import GALLERY, NOTEBOOK, README, ROOT, Claim, figure_json
from tests.docs.claims_foundation import CLAIMS as FOUNDATION_CLAIMS
from tests.docs.foundation_tables import erank_table, variant_table

CLAIMS = FIGURE_CLAIMS + FOUNDATION_CLAIMS
#: The README's foundation tables, rendered from the full run's JSON.
TABLES = (variant_table("metric"), variant_table("ood_metric"), erank_table())

#: Sections of README.md whose numbers are measurements: from the first heading to the second.
RESULTS_SECTIONS = (("### Where the asymmetry holds, and where it fails", "## Figures"),
                    ("## Figures", "Wall times on this project"),
                    ("## A foundation model pretrained here", "## Tests"))
#: Numbers in those sections that are not measurements of a figure, with the reason.
NOT_MEASURED = {
    "0.5": "a value of α named by a claim's sentence (the spectral decay), not a result",
}
#: A sentence that names its preset is labelled: its numbers are of that preset, not the gallery's.
LABEL = re.compile(r"full preset|\(full\b")
#: A number right after one of these words names a part of the paper, not a measurement.
REFERENCE = re.compile(r"(?:Section|Lemmas?|Theorem|Corollary|eq\.|§)\s*$")


def _normal(text: str) -> str:
    return " ".join(text.split())


def _document(name: str) -> str:
    if name == NOTEBOOK:
        cells = json.loads((ROOT / NOTEBOOK).read_text())["cells"]
        return _normal("\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"))
    return _normal((ROOT / name).read_text())


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: f"{c.document}:{c.figure}:{c.template[:40]}")
def test_each_claim_holds_in_the_figure_json_and_stands_in_its_document(claim: Claim):
    """The claim's directions hold in the committed quick JSON, and the sentence with that JSON's
    numbers, at the precision it states, is in the document word for word."""
    sentence = _normal(claim.render())
    assert sentence in _document(claim.document), f"not in {claim.document}:\n{sentence}"


@pytest.mark.parametrize("name", registry.FIGURES)
def test_the_gallery_holds_each_figure_from_the_current_code(name):
    """``docs/gallery`` has each figure's PNG, JSON and caption, made by this code (its fingerprint:
    docstrings and comments aside), so the numbers the prose is checked against are today's. Refresh
    with ``lora-asym figures --quick --seed 0`` and ``python -m figures.gallery figures/out docs/gallery``."""
    data = figure_json(name)
    assert (GALLERY / f"{name}.png").is_file()
    assert (GALLERY / f"{name}.txt").read_text().strip() == data["caption"].strip()
    assert data["seed"] == 0 and data["config"] == _quick_config(name)
    if data["environment"].get("python", "").rsplit(".", 1)[0] != platform.python_version().rsplit(".", 1)[0]:
        pytest.skip("the fingerprint reads Python's syntax trees, whose text differs between Python versions")
    assert data["code_fingerprint"] == code_fingerprint(), f"docs/gallery/{name}.json is from other code"


def _quick_config(name: str) -> dict:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(registry.load(name).Config.quick())))


def _sections() -> list[str]:
    text = (ROOT / README).read_text()
    out = []
    for start, end in RESULTS_SECTIONS:
        i = text.index(start)
        out.append(text[i : text.index(end, i + len(start))])
    notebook = json.loads((ROOT / NOTEBOOK).read_text())["cells"]
    out += ["".join(c["source"]) for c in notebook if c["cell_type"] == "markdown"]
    return out


def test_every_number_in_the_results_prose_is_checked_or_labelled():
    """Every decimal number in README's results sections and the notebook's markdown stands inside a
    checked claim, in a sentence that names its preset, or in ``NOT_MEASURED`` with a reason."""
    claimed = [_normal(c.render()) for c in CLAIMS if c.document in (README, NOTEBOOK)] + [_normal(t) for t in TABLES]
    loose = []
    for section in _sections():
        text = _normal(section)
        for sentence in claimed:
            text = text.replace(sentence, " ")
        for piece in re.split(r"(?<=[.;:])\s+(?=[A-Z*(`-])", text):
            if LABEL.search(piece):
                continue
            for m in re.finditer(r"(?<![\w.^])[−+-]?\d+\.\d+", piece):
                if m.group(0).lstrip("−+-") not in NOT_MEASURED and not REFERENCE.search(piece[: m.start()]):
                    loose.append((m.group(0), piece[:120]))
    assert loose == []


@pytest.mark.parametrize("table", TABLES, ids=["metric", "ood_metric", "erank"])
def test_foundation_tables_are_the_full_runs(table):
    """The README's foundation tables (the variants in and out of distribution, the effective ranks of Σ)
    are rendered from the committed full run (``docs/gallery/full/foundation_variants.json``), cell by cell."""
    assert table in (ROOT / README).read_text()
