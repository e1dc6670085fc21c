"""Every code name the prose mentions exists: toolkit functions and attributes (with the keyword
arguments a call spells out), files and tests, CLI commands and flags.

The prose is README.md, docs/THEORY.md and the markdown cells of paper_figs.ipynb; a name is an
inline code span (between backticks) of one of the shapes ``SHAPES`` recognises. Mathematics and
bare identifiers (``b_only``, ``q_bits``) are not names of this kind and are left alone.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import re
import shlex
from pathlib import Path

import pytest

from figures import cli

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("theory", "synthetic", "bounds", "figures", "peft_bridge", "bench")
#: Paths the toolkit writes (not in the checkout): output folders and the kernel cache.
GENERATED = ("figures/out", "OUT/", "~/.cache/", "rows.csv", "gaps.csv", "RUN1", "run1", "DIR")
DOTTED = re.compile(rf"^((?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+)(\((.*)\))?(?:\s*->.*)?$")
PATH = re.compile(r"^((?:theory|synthetic|bounds|figures|peft_bridge|bench|tests|docs)/[\w./-]*|"
                  r"[\w-]+\.(?:ipynb|toml|md))(?:::(\w+))?$")
COMMAND = re.compile(r"^(lora-asym|python -m [\w.]+)(\s.*)?$")
FLAG = re.compile(r"^(--[a-z][\w-]*)(?:[ =].*)?$")


def _prose() -> list[tuple[str, str]]:
    """(source, text) of every prose document, fenced code blocks removed."""
    out = [(name, (ROOT / name).read_text()) for name in ("README.md", "docs/THEORY.md")]
    notebook = json.loads((ROOT / "paper_figs.ipynb").read_text())
    out += [(f"paper_figs.ipynb cell {i}", "".join(cell["source"])) for i, cell in enumerate(notebook["cells"])
            if cell["cell_type"] == "markdown"]
    return [(source, re.sub(r"```.*?```", "", text, flags=re.S)) for source, text in out]


def _spans() -> list[tuple[str, str]]:
    spans = {(source, span.strip()) for source, text in _prose() for span in re.findall(r"`([^`\n]+)`", text)}
    return sorted(spans)


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """``lora-asym`` and each of its subcommands (and their own subcommands), by command line."""
    found = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        found[prefix] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(f"{prefix} {name}", sub)

    walk("lora-asym", cli.build_parser())
    return found


PARSERS = _parsers()
FLAGS = {opt for parser in PARSERS.values() for action in parser._actions for opt in action.option_strings}


def _resolve(dotted: str):
    """The object a dotted name names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def _keywords(args: str) -> list[str]:
    return re.findall(r"(?:^|[,(]\s*)([A-Za-z_]\w*)\s*=(?!=)", args)


#: Classes the packages export, so that ``MLPTask.paper_regime()`` is checked as ``synthetic.MLPTask...``.
EXPORTED = {name: package for package in ("theory", "synthetic", "bounds")
            for name in importlib.import_module(package).__all__ if name[:1].isupper()}


def _check(span: str) -> str | None:
    """Why ``span`` names nothing that exists (None: it exists, or it is not a code name)."""
    head = span.split(".")[0]
    if head in EXPORTED and "." in span.split("(")[0]:
        span = f"{EXPORTED[head]}.{span}"
    if m := DOTTED.match(span):
        try:
            obj = _resolve(m.group(1))
        except (ModuleNotFoundError, AttributeError) as exc:
            return f"{m.group(1)} does not resolve ({exc})"
        if m.group(3) is not None and callable(obj):
            try:
                params = inspect.signature(obj).parameters
            except (TypeError, ValueError):
                return None
            if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
                missing = [k for k in _keywords(m.group(3)) if k not in params]
                if missing:
                    return f"{m.group(1)} takes no keyword {missing}"
        return None
    if m := PATH.match(span):
        if any(m.group(1).startswith(g) for g in GENERATED):
            return None
        path = ROOT / m.group(1)
        if not path.exists():
            return f"{m.group(1)} does not exist"
        if m.group(2) and f"def {m.group(2)}(" not in path.read_text():
            return f"{m.group(1)} has no test {m.group(2)}"
        return None
    if m := COMMAND.match(span):
        words = shlex.split(span.split("|")[0].split("#")[0])
        if words[0] == "python":
            return None if importlib.util.find_spec(words[2]) else f"no module {words[2]}"
        command = "lora-asym"
        for word in words[1:]:
            if word.startswith("-"):
                break
            if f"{command} {word}" in PARSERS:
                command = f"{command} {word}"
        options = {o for a in PARSERS[command]._actions for o in a.option_strings}
        unknown = [w.split("=")[0] for w in words if w.startswith("--") and w.split("=")[0] not in options]
        return f"`{command}` has no flag {unknown}" if unknown else None
    if m := FLAG.match(span):
        return None if m.group(1) in FLAGS else f"no lora-asym command has the flag {m.group(1)}"
    return None


@pytest.mark.parametrize("document", ["README.md", "docs/THEORY.md", "paper_figs.ipynb"])
def test_every_code_name_in_the_prose_exists(document):
    """Each code span of the document that names a toolkit object, file, test, command or flag names
    one that exists (with the keyword arguments it spells out)."""
    spans = [(source, span) for source, span in _spans() if source.startswith(document)]
    assert spans
    problems = [f"{source}: `{span}`: {problem}" for source, span in spans if (problem := _check(span))]
    assert problems == []


@pytest.mark.parametrize("span", [
    "synthetic.linear.fit.INITS", "synthetic.measure_gap(task, sampler_kind=1)", "tests/no_such_file.py",
    "tests/test_reproducibility.py::test_no_such_test", "lora-asym figures --no-such-flag", "--no-such-flag",
    "python -m no_such_module", "MLPTask.no_such_preset()",
])
def test_the_check_finds_names_that_do_not_exist(span):
    """The checker itself: a missing attribute, keyword, file, test, flag or module is reported."""
    assert _check(span) is not None
