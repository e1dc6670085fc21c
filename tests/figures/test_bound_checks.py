"""Bound checks: the record of a bound against its measured gap, and how the CLI reports them."""

import json

import numpy as np
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
    """No checks: nothing; all held: one 'bounds held: k of k checks (j informative)' line; else one
    line per violation."""
    held, bad = _check(vacuous=False), _check(bound=0.1)
    assert checks.report_lines("fig", []) == []
    assert checks.report_lines("fig", [held, held]) == ["bounds held: 2 of 2 checks (2 informative)"]
    assert checks.report_lines("fig", [held, bad, bad]) == [checks.violation_line("fig", bad)] * 2
    assert checks.caption_sentence([held]).startswith("Every bound held")
    assert "all 1 informative" in checks.caption_sentence([held])
    sentence = checks.caption_sentence([held, bad])
    assert "VIOLATION" in sentence and "1 of 2 checks" in sentence and "Of the 1 that held, 1 informative" in sentence


def test_a_closed_form_bound_has_no_resolution_and_an_estimate_has_one():
    """A closed form (equal ends) has ``resolved = None``; an estimate is resolved when its value is at
    least twice its interval's half-width (value >= high - low), unless the caller says otherwise."""
    assert _check(bound=0.3)["resolved"] is None
    assert _check(bound=0.3, bound_low=0.2, bound_high=0.5)["resolved"] is True  # 0.3 >= 0.3
    assert _check(bound=0.3, bound_low=0.0, bound_high=0.4)["resolved"] is False
    assert _check(bound=0.3, bound_low=0.2, bound_high=0.5, resolved=False)["resolved"] is False


@pytest.mark.parametrize(
    "value,low,high,floor,expected",
    [(0.3, 0.2, 0.5, 0.0, True), (0.3, 0.0, 0.4, 0.0, False), (0.3, 0.25, 0.35, 0.3, False),
     (0.3, 0.25, 0.35, 0.29, True), (0.0, 0.0, 0.0, 0.0, False)],
)
def test_is_resolved(value, low, high, floor, expected):
    """Resolved: value >= 2 (high - low)/2 and value > floor; an estimate of 0 is never resolved."""
    assert checks.is_resolved(value, low, high, floor) is expected


def test_informative_means_held_not_vacuous_and_resolved():
    """Only a check that held, is not vacuous (known) and is not an unresolved estimate is informative."""
    assert _check(vacuous=False)["informative"] is True
    assert _check(vacuous=True)["informative"] is False
    assert _check(vacuous=None)["informative"] is False
    assert _check(bound=0.1, vacuous=False)["informative"] is False  # a violation
    assert _check(bound=0.3, bound_low=0.0, bound_high=0.4, vacuous=False)["informative"] is False


def test_caption_names_vacuous_and_unresolved_checks_grouped_by_bound():
    """A caption never calls a vacuous or unresolved bound held without saying so: it counts the
    informative checks and lists the others by bound, configurations grouped on their last key, keys
    that never vary left out."""
    def at(variant, n, value, bound="Lemma 4.5", **kw):
        return checks.bound_check({"variant": variant, "n": n, "d_in": 16}, bound, value, loss="0-1 loss", gap=0.0,
                                  gap_low=-0.1, gap_high=0.1, gap_interval=checks.TWO_SE, **kw)

    records = [
        at("lora", 16, 1.5, vacuous=True), at("lora", 64, 1.2, vacuous=True), at("full", 16, 2.0, vacuous=True),
        at("full", 64, 0.5, vacuous=False), at("lora", 64, 0.1, "ld-CMI", bound_low=0.0, bound_high=0.3, vacuous=False),
    ]
    sentence = checks.caption_sentence(records)
    assert sentence.startswith("Every bound held against the measured gap of its loss (5 of 5 checks")
    assert "1 of them informative" in sentence
    vacuous = "vacuous (at or above the loss's range): Lemma 4.5 (variant = lora, n = 16, 64; variant = full, n = 16)"
    assert vacuous in sentence
    assert "unresolved estimates" in sentence and "ld-CMI (variant = lora, n = 64)" in sentence
    assert "d_in" not in sentence


def test_array_checks_and_resolved_flags():
    """``array_checks`` makes one record per (row, n, pair) from arrays, skipping NaN bounds, carrying
    the vacuous and resolved flags; ``resolved_flags`` applies ``is_resolved`` entry by entry."""
    flags = checks.resolved_flags(np.array([0.3, 0.3, np.nan]), [0.2, 0.0, 0.0], [0.5, 0.4, 0.0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(flags, [1.0, 0.0, 0.0])
    row = {"b": np.array([0.3, np.nan]), "b_low": np.array([0.2, 0.0]), "b_high": np.array([0.5, 0.0]),
           "b_vacuous": np.zeros(2), "b_resolved": np.array([1.0, 0.0]),
           "g": np.zeros(2), "g_low": -np.ones(2), "g_high": np.ones(2)}
    records = checks.array_checks({"n": [8, 16], "lora": row}, ["lora"], [("b", "g")], {"b": "B"},
                                  {"g": "loss"}, {"g": checks.TWO_SE})
    assert len(records) == 1 and records[0]["where"] == {"variant": "lora", "n": 8}
    assert records[0]["resolved"] is True and records[0]["vacuous"] is False and records[0]["informative"] is True


def _run_cli_with(monkeypatch, capsys, tmp_path, records):
    """`lora-asym figures --only asymmetry_vs_rank` at the tiny size, its bound_checks replaced by ``records``."""
    module = registry.load("asymmetry_vs_rank")
    monkeypatch.setattr(module.Config, "quick", classmethod(lambda cls: cls.tiny()))
    monkeypatch.setattr(module, "bound_checks", lambda config, data: records, raising=False)
    status = cli.main(["figures", "--only", "asymmetry_vs_rank", "--out", str(tmp_path), "--jobs", "1"])
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
    """Checks that all held give one 'bounds held: k of k checks (j informative)' line, counting only
    the checks that are neither vacuous nor unresolved."""
    records = [_check(vacuous=False), _check(bound=0.9, vacuous=True),
               _check(bound=0.3, bound_low=0.0, bound_high=0.4, vacuous=False)]
    status, lines, _ = _run_cli_with(monkeypatch, capsys, tmp_path, records)
    assert status == 0 and lines[1:] == ["bounds held: 3 of 3 checks (1 informative)"]
