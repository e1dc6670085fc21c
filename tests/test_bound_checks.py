"""Bound checks: the record of a bound against its measured gap, and how the CLI reports them."""

import json

import pytest

from figures import checks, cli, registry


def _check(bound=0.3, gap_low=0.2, **kw):
    args = dict(loss="0-1 loss", gap=0.5, gap_low=gap_low, gap_high=0.8, gap_interval=checks.TWO_SE)
    args.update(kw)
    return checks.bound_check({"variant": "lora", "n": 64}, "Lemma 4.5", bound, **args)


def test_a_closed_form_bound_above_the_gap_low_end_held():
    """bound 0.3 >= gap low 0.2: held, though the bound is below the gap's mean 0.5; its ends equal its value."""
    record = _check(bound=0.3, gap_low=0.2)
    assert record["held"] is True
    assert record["bound_low"] == record["bound_high"] == record["bound_value"] == 0.3
    assert checks.violations([record]) == []


def test_a_bound_equal_to_the_gap_low_end_held():
    """The comparison is bound_high >= gap_low: equality is not a violation."""
    assert _check(bound=0.2, gap_low=0.2)["held"] is True


def test_a_bound_below_the_gap_interval_is_a_violation():
    """bound 0.1 < gap low 0.2: not held, listed by violations, and reported in the CLI's words."""
    record = _check(bound=0.1, gap_low=0.2, vacuous=False)
    assert record["held"] is False and record["vacuous"] is False
    assert checks.violations([_check(), record]) == [record]
    assert checks.violation_line("fig", record) == (
        "VIOLATION fig: Lemma 4.5 below measured 0-1 loss gap at variant = lora, n = 64: bound ≤ 0.100 < gap ≥ 0.200"
    )


def test_the_upper_end_of_an_estimated_bound_decides():
    """An estimated bound 0.1 with interval [0.05, 0.25] reaches the gap's low end 0.2: held."""
    assert _check(bound=0.1, bound_low=0.05, bound_high=0.25, gap_low=0.2)["held"] is True
    assert _check(bound=0.1, bound_low=0.05, bound_high=0.15, gap_low=0.2)["held"] is False


@pytest.mark.parametrize(
    "kw,fragment",
    [
        ({"bound": float("nan")}, "bound_value must be a finite number"),
        ({"gap_low": float("inf")}, "gap_low must be a finite number"),
        ({"bound_low": 0.5, "bound_high": 0.4}, "bound_low must not exceed bound_high"),
        ({"gap_low": 0.9}, "gap_low must not exceed gap_high"),
        ({"loss": ""}, "must be non-empty"),
    ],
)
def test_bad_records_are_refused(kw, fragment):
    """A non-finite number or an inverted interval raises ValueError naming the argument."""
    with pytest.raises(ValueError, match=fragment):
        _check(**kw)


def test_report_lines_and_caption_sentence():
    """No checks: nothing; all held: one 'bounds held: k of k checks' line; else one line per violation."""
    held, bad = _check(), _check(bound=0.1)
    assert checks.report_lines("fig", []) == []
    assert checks.report_lines("fig", [held, held]) == ["bounds held: 2 of 2 checks"]
    assert checks.report_lines("fig", [held, bad, bad]) == [checks.violation_line("fig", bad)] * 2
    assert checks.caption_sentence([held]).startswith("Every bound held")
    sentence = checks.caption_sentence([held, bad])
    assert "VIOLATION" in sentence and "1 of 2 checks" in sentence


def _run_cli_with(monkeypatch, capsys, tmp_path, records):
    """`lora-asym figures --only asymmetry_vs_rank` at the tiny size, its bound_checks replaced by ``records``."""
    module = registry.load("asymmetry_vs_rank")
    monkeypatch.setattr(module.Config, "quick", classmethod(lambda cls: cls.tiny()))
    monkeypatch.setattr(module, "bound_checks", lambda config, data: records, raising=False)
    status = cli.main(["figures", "--only", "asymmetry_vs_rank", "--out", str(tmp_path)])
    return status, capsys.readouterr().out.splitlines(), json.loads((tmp_path / "asymmetry_vs_rank.json").read_text())


def test_cli_prints_a_violation_and_still_exits_0(monkeypatch, capsys, tmp_path):
    """A violated check is printed as one VIOLATION line and written to the JSON; the exit status is 0."""
    bad = _check(bound=0.1, gap_low=0.2)
    status, lines, data = _run_cli_with(monkeypatch, capsys, tmp_path, [_check(), bad])
    assert status == 0
    assert lines[1:] == [checks.violation_line("asymmetry_vs_rank", bad)]
    assert lines[1].startswith("VIOLATION asymmetry_vs_rank: Lemma 4.5 below measured 0-1 loss gap at")
    assert data["bound_checks"][1]["held"] is False and "bound_checks_note" not in data


def test_cli_prints_bounds_held_when_every_check_held(monkeypatch, capsys, tmp_path):
    """Checks that all held give one 'bounds held: k of k checks' line."""
    status, lines, _ = _run_cli_with(monkeypatch, capsys, tmp_path, [_check(), _check(bound=0.9)])
    assert status == 0 and lines[1:] == ["bounds held: 2 of 2 checks"]
