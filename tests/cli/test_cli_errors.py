"""Every command-line mistake ends with one line on stderr and exit 2, argparse's own included."""

from __future__ import annotations

import pytest

from ipo_vlm.cli.main import main


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["optimize", "--steps", "abc"], "argument --steps: invalid int value: 'abc'"),
        (["optimize", "--select-on", "bogus"], "argument --select-on: invalid choice"),
        (["optimize", "--stepz", "3"], "unrecognized arguments: --stepz 3"),
        (["evaluate", "--seed", "x"], "argument --seed: invalid int value"),
        (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
    ],
)
def test_argparse_errors_are_one_line(argv, reason, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("ipo: error: ") and reason in err[0]
    assert "--help" in err[0]  # where the usage went
