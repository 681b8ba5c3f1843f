"""The command a study CLI records in its README can be pasted back."""

import shlex

from refimpl.experiments import command_line


def test_command_line_is_shell_quoted_and_round_trips():
    argv = ["study", "--scale", "full", "--out", "/tmp/a dir"]
    cmd = command_line("rise", argv)
    assert cmd == "python -m refimpl.experiments.rise study --scale full --out '/tmp/a dir'"
    assert shlex.split(cmd)[3:] == argv
    assert command_line("dual_space", []) == "python -m refimpl.experiments.dual_space"
