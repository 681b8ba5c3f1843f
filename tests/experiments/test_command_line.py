"""The shared pieces of the study CLIs: the command a README records (it can be
pasted back) and the --models subset."""

import shlex

import pytest

from refimpl.experiments import command_line


def test_command_line_is_shell_quoted_and_round_trips():
    argv = ["study", "--scale", "full", "--out", "/tmp/a dir"]
    cmd = command_line("rise", argv)
    assert cmd == "python -m refimpl.experiments.rise study --scale full --out '/tmp/a dir'"
    assert shlex.split(cmd)[3:] == argv
    assert command_line("dual_space", []) == "python -m refimpl.experiments.dual_space"


def test_study_models_keeps_the_study_order_and_names_bad_input():
    from refimpl.experiments import study_models

    assert study_models(None, ("A", "B", "C")) == ["A", "B", "C"]
    assert study_models(["C", "A"], ("A", "B", "C")) == ["A", "C"]
    for bad in ([], ["D"], ["A", "D"]):
        with pytest.raises(ValueError, match="models must be a non-empty subset"):
            study_models(bad, ("A", "B", "C"))
