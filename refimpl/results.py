"""The book's committed data: book-scale weights and full-scale results.

Every chapter shows two things: its live run at the current scale, and the
committed results of a ``full``-scale run of the same code. Those results and
the book-scale weights of chapters 4 and 5 live in the repository under
``book/data/<topic>/`` and ship inside the package as ``refimpl.bookdata``
(see ``pyproject.toml``), so they are found through :mod:`importlib.resources`
from any working directory, in a clone, an editable install or a plain
``pip install`` on Colab. Nothing here is written at run time: new weights and
results go to :func:`refimpl.cache_dir` or an explicit ``--out`` folder, and a
maintainer copies a finished ``full`` run into ``book/data/<topic>/full/``.

A committed run is a folder with ``results.csv`` (one row per seed, model and
setting) and ``README.md`` (the exact command, wall time, machine, torch version
and date), written by :func:`write_run`.
"""

from __future__ import annotations

import datetime as _dt
import importlib.resources as _res
import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from .stats import read_csv, write_csv

__all__ = ["data_root", "data_path", "CommittedRun", "committed", "write_run",
           "machine_description", "glue_markdown", "study_folder", "resumable_part",
           "TOPICS"]

#: The topic folders of ``book/data``, one per chapter.
TOPICS: tuple[str, ...] = ("operator_classification", "hidden_physics", "dual_space",
                           "gaussian_shortcut", "rise")


def data_root() -> Path:
    """The installed ``book/data`` folder (the package ``refimpl.bookdata``): the
    repository's ``book/data`` in a clone or editable install, its copy in
    ``site-packages`` otherwise. Read-only by convention."""
    root = _res.files("refimpl.bookdata")
    if not isinstance(root, Path):  # pragma: no cover - zipped installs
        raise RuntimeError(
            f"refimpl.bookdata is not on the file system ({root!r}); install refimpl "
            "unzipped (pip does by default)")
    return root


def data_path(*parts: str) -> Path:
    """A file or folder inside the committed data, e.g.
    ``data_path("rise", "schnet_U0_book.pt")``. It may not exist."""
    return data_root().joinpath(*parts)


@dataclass(frozen=True)
class CommittedRun:
    """A committed run: its rows and the provenance text of its ``README.md``."""

    topic: str
    scale: str
    rows: list[dict[str, Any]]
    readme: str

    @property
    def columns(self) -> list[str]:
        return list(self.rows[0].keys()) if self.rows else []

    def provenance(self) -> str:
        """The README's first paragraph after its title (command, machine, date)."""
        lines = [ln for ln in self.readme.splitlines() if ln.strip()]
        return "\n".join(ln for ln in lines if not ln.startswith("#"))


def committed(topic: str, scale: str = "full", name: str = "results.csv",
              columns: Sequence[str] | None = None) -> CommittedRun | None:
    """The committed results of ``topic`` at ``scale``, or :obj:`None` when no run
    has been committed yet.

    Args:
        topic: one of :data:`TOPICS`.
        scale: the sub-folder (default ``"full"``).
        name: the CSV file in it (default ``results.csv``).
        columns: if given, the columns the caller reads; a committed file that lacks
            one raises :class:`ValueError` naming it (a chapter and its data out of
            step).
    """
    if topic not in TOPICS:
        raise ValueError(f"topic must be one of {TOPICS}, got {topic!r}")
    folder = data_path(topic, scale)
    csv_file = folder / name
    if not csv_file.is_file():
        return None
    rows = read_csv(csv_file)
    readme_file = folder / "README.md"
    readme = readme_file.read_text() if readme_file.is_file() else ""
    run = CommittedRun(topic, scale, rows, readme)
    if columns is not None:
        missing = [c for c in columns if c not in run.columns]
        if missing:
            raise ValueError(
                f"the committed {topic}/{scale}/{name} lacks the columns {missing}; "
                f"it has {run.columns}")
    return run


def study_folder(topic: str, scale: str, out: str | os.PathLike | None = None,
                 double: bool = False) -> tuple[Path, Path]:
    """``(out, out/parts)`` of a resumable study, created if needed: ``out`` if
    given, else :func:`refimpl.cache_dir` ``(topic, scale)`` (``scale-double``
    for the convergence check)."""
    from refimpl import cache_dir

    folder = Path(out) if out is not None else cache_dir(
        topic, scale + ("-double" if double else ""))
    parts = folder / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    return folder, parts


def resumable_part(path: str | os.PathLike, compute: Callable[[], list[dict[str, Any]]],
                   columns: Sequence[str], label: str = "") -> list[dict[str, Any]]:
    """The rows of one part of a study (one seed and model, say). A finished part
    is read back from ``path``; otherwise ``compute()`` makes the rows, which are
    written to ``path`` atomically (:func:`refimpl.stats.write_csv`) and returned.
    A run killed at any instant therefore loses at most the part in progress, and
    a re-run resumes after the last finished part."""
    path = Path(path)
    if path.is_file():
        rows = read_csv(path)
        if label:
            print(f"{label}: kept {path}", flush=True)
        return rows
    rows = compute()
    write_csv(rows, path, columns=columns)
    return rows


def glue_markdown(key: str, text: str) -> None:
    """Hand ``text`` (Markdown) to the book under ``key``, for a chapter's summary
    to show with ``{glue:md}`` (MyST-NB's :func:`myst_nb.glue`, not displayed
    where it is computed). Where MyST-NB is not installed (a notebook opened on
    Colab) the text is displayed right here instead, so no reader misses it."""
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"key must be an identifier-like string, got {key!r}")
    from IPython.display import Markdown, display

    try:
        from myst_nb import glue
    except ImportError:
        display(Markdown(text))
        return
    glue(key, Markdown(text), display=False)


def machine_description(device: torch.device | None = None) -> str:
    """One line: CPU or GPU model, core count, Python, torch version."""
    device = device or torch.device("cpu")
    if device.type == "cuda":
        hw = f"GPU {torch.cuda.get_device_name(device)}"
    else:
        cpu = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as fh:
                for line in fh:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        hw = f"CPU {cpu}, {os.cpu_count()} cores ({torch.get_num_threads()} torch threads)"
    return (f"{hw}; Python {sys.version.split()[0]}; torch {torch.__version__}; "
            f"{platform.system()} {platform.release()}")


def write_run(rows: Iterable[Mapping[str, Any]], out: str | os.PathLike, *, command: str,
              wall_seconds: float, device: torch.device | None = None,
              columns: Sequence[str] | None = None, notes: str = "",
              name: str = "results.csv") -> Path:
    """Write ``results.csv`` and its provenance ``README.md`` into ``out``.

    Args:
        rows: one mapping per seed / model / setting.
        out: the output folder (created).
        command: the exact command that made the rows.
        wall_seconds: the run's wall time.
        device: the device it ran on (for the machine line).
        columns: the CSV's columns in order (default: the first row's keys).
        notes: extra Markdown appended to the README (e.g. the convergence check).
        name: the CSV's file name.

    Both files are written atomically. Returns the CSV's path.
    """
    out = Path(out)
    path = write_csv(rows, out / name, columns=columns)
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (f"# {out.name}\n\n"
            f"- command: `{command}`\n"
            f"- wall time: {wall_seconds / 60:.1f} min\n"
            f"- machine: {machine_description(device)}\n"
            f"- date: {date}\n"
            f"- file: `{name}`\n")
    if notes:
        text += "\n" + notes.strip() + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".README.md.", suffix=".tmp", dir=out)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, out / "README.md")
    return path
