"""Command-line experiments that reproduce a chapter's tables at any scale
(``python -m refimpl.experiments.<name> --scale paper``)."""


def add_study_arguments(parser, topic: str) -> None:
    """The options every chapter's study CLI shares: ``--scale``, ``--out``
    (default ``refimpl.cache_dir(topic, SCALE)``), ``--seeds``, ``--double`` (the
    convergence check), ``--device`` and ``--models`` (see :func:`study_models`)."""
    from pathlib import Path

    import refimpl

    parser.add_argument("--scale", choices=list(refimpl.SCALES), default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default: refimpl.cache_dir("
                             f"'{topic}', SCALE))")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="training seeds (default: the preset's)")
    parser.add_argument("--double", action="store_true",
                        help="double the epochs (convergence check)")
    parser.add_argument("--device", default=None, help="default: refimpl.device()")
    parser.add_argument("--models", nargs="+", default=None,
                        help="only these models (default: all; parts are shared, "
                             "so two processes can split a study)")


def study_models(models, available) -> list[str]:
    """The models a study call trains: ``available`` (in its order), or the
    requested subset of it. Restricting a call lets two processes (one per CPU
    core) share one study's resumable parts; a last call without it assembles
    every part. Anything not in ``available`` is a :class:`ValueError`."""
    available = list(available)
    if models is None:
        return available
    models = list(models)
    if not models or any(m not in available for m in models):
        raise ValueError(f"models must be a non-empty subset of {available}, "
                         f"got {models}")
    return [m for m in available if m in models]


def command_line(module: str, argv=None) -> str:
    """The command that ran, for a run's README:
    ``python -m refimpl.experiments.<module>`` and its arguments (``argv``,
    default ``sys.argv[1:]``), shell-quoted so that it can be pasted back."""
    import shlex
    import sys

    args = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    return shlex.join(["python", "-m", f"refimpl.experiments.{module}", *args])
