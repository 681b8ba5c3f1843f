"""refimpl.results: committed runs and the hand-over of computed text to the book."""

import sys

import pytest

import refimpl.results as R


def test_write_run_then_committed_reads_the_rows_back(tmp_path, monkeypatch):
    rows = [{"model": "A", "seed": 0, "test": 0.5}, {"model": "B", "seed": 0, "test": 0.25}]
    out = tmp_path / "operator_classification" / "full"
    R.write_run(rows, out, command="python -m x --scale full", wall_seconds=61.0)
    monkeypatch.setattr(R, "data_root", lambda: tmp_path)
    run = R.committed("operator_classification", columns=["model", "test"])
    assert [r["model"] for r in run.rows] == ["A", "B"]
    assert float(run.rows[1]["test"]) == 0.25
    assert "python -m x --scale full" in run.provenance()
    with pytest.raises(ValueError, match="lacks the columns"):
        R.committed("operator_classification", columns=["missing"])
    assert R.committed("rise") is None
    with pytest.raises(ValueError, match="topic must be one of"):
        R.committed("nope")


def test_glue_markdown_displays_the_text_where_myst_nb_is_missing(monkeypatch):
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import fails, as on Colab
    R.glue_markdown("verdicts", "**A** is better than B.")
    assert len(shown) == 1 and shown[0].data == "**A** is better than B."


def test_glue_markdown_hands_the_text_to_myst_nb(monkeypatch):
    import myst_nb

    glued = []
    monkeypatch.setattr(myst_nb, "glue", lambda k, v, display: glued.append((k, v.data, display)))
    R.glue_markdown("verdicts", "text")
    assert glued == [("verdicts", "text", False)]
    with pytest.raises(ValueError, match="key must be"):
        R.glue_markdown("two words", "text")


def test_resumable_part_computes_once_then_reads_back(tmp_path, capsys):
    calls = []

    def compute():
        calls.append(1)
        return [{"seed": 0, "test": 0.5}]

    out, parts = R.study_folder("rise", "smoke", tmp_path / "study")
    assert parts == tmp_path / "study" / "parts" and parts.is_dir()
    first = R.resumable_part(parts / "seed0.csv", compute, ["seed", "test"], label="seed 0")
    again = R.resumable_part(parts / "seed0.csv", compute, ["seed", "test"], label="seed 0")
    assert calls == [1] and first == [{"seed": 0, "test": 0.5}]
    assert float(again[0]["test"]) == 0.5
    assert "seed 0: kept" in capsys.readouterr().out


def test_study_folder_defaults_to_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path))
    out, _ = R.study_folder("rise", "full", double=True)
    assert out.name == "full-double" and tmp_path in out.parents
