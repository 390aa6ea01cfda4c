"""seedlm_fpga.core.progress: step lines on stderr, one per step on a terminal, two otherwise."""
import io
import re

import pytest

from seedlm_fpga.core import progress


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_not_a_terminal_start_and_end_lines(capsys):
    with progress.step("building x") as s:
        s.note("12 cycles")
    progress.cached("building y")
    progress.info("a notice")
    out, err = capsys.readouterr()
    assert out == ""
    assert re.fullmatch(r"  building x \.\.\.\n  building x: done in \d+\.\d s \(12 cycles\)\n"
                        r"  building y \.\.\. cached\n  a notice\n", err)


def test_terminal_one_line_per_step(monkeypatch):
    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    with progress.step("building x"):
        pass
    with progress.step("outer"):
        progress.info("inside")       # breaks the open line: the end repeats the step's name
    with progress.step("cached one") as s:
        s.cached()
    lines = tty.getvalue().splitlines()
    assert re.fullmatch(r"  building x \.\.\. done in \d\.\d s", lines[0])
    assert lines[1] == "  outer ... " and lines[2] == "  inside"
    assert re.fullmatch(r"  outer: done in \d\.\d s", lines[3])
    assert lines[4] == "  cached one ... cached"


def test_failure_is_reported_and_raised(capsys):
    with pytest.raises(KeyError):
        with progress.step("risky"):
            raise KeyError("x")
    assert re.search(r"  risky: failed after \d\.\d s\n$", capsys.readouterr().err)


def test_quiet(capsys):
    with progress.quiet():
        with progress.step("hidden"):
            progress.info("hidden too")
        progress.cached("hidden")
    assert not progress.is_quiet()
    assert capsys.readouterr() == ("", "")


def test_step_bar_stands_in_for_tqdm(capsys):
    with progress.StepBar("perplexity: original", total=100, unit="story") as bar:
        for _ in range(25):
            bar.update(4)
    bar.close()  # a second close prints nothing
    assert re.fullmatch(r"  perplexity: original \.\.\.\n"
                        r"  perplexity: original: done in \d+\.\d s \(100 stories\)\n", capsys.readouterr().err)
