import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from refimpl.molecules import draw_2d, draw_molecule, radius_graph, view3d  # noqa: E402

# ethanol-like geometry: C-C-O with hydrogens (approximate, Å)
Z = torch.tensor([6, 6, 8, 1, 1, 1, 1, 1, 1])
POS = torch.tensor([
    [-1.2, 0.0, 0.0], [0.3, 0.0, 0.0], [0.8, 1.33, 0.0],
    [-1.56, -1.03, 0.0], [-1.56, 0.51, 0.89], [-1.56, 0.51, -0.89],
    [0.66, -0.51, 0.89], [0.66, -0.51, -0.89], [1.76, 1.3, 0.0]])


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_draw_molecule_bonds_atoms_spheres():
    ax = draw_molecule(Z, POS, radii=torch.full((9,), 0.5))
    # 8 bonds (C-C, C-O, 5 C-H, O-H) drawn as lines
    assert len(ax.lines) == 8
    scat = [c for c in ax.collections if c.__class__.__name__ == "Path3DCollection"]
    assert len(scat) == 1 and len(scat[0].get_offsets()) == 9
    surfaces = [c for c in ax.collections if c.__class__.__name__ == "Poly3DCollection"]
    assert len(surfaces) == 9


def test_draw_edges_with_colours_and_highlights():
    ei = radius_graph(POS, 2.0)
    hl = torch.zeros(ei.size(1), dtype=torch.bool)
    hl[:3] = True
    ax = draw_molecule(Z, POS, bonds=False, edges=ei, highlight_edges=hl)
    assert len(ax.lines) == ei.size(1)
    alphas = sorted({round(line.get_alpha(), 2) for line in ax.lines})
    assert alphas == [0.12, 1.0]
    assert sum(line.get_alpha() == 1.0 for line in ax.lines) == 3
    colours = ["red"] * ei.size(1)
    ax2 = draw_molecule(Z, POS, bonds=False, edges=ei, edge_colors=colours)
    assert all(line.get_color() == "red" for line in ax2.lines)


def test_view3d_falls_back_to_static():
    try:
        import py3Dmol  # noqa: F401
        pytest.skip("py3Dmol installed; fallback not exercised")
    except ImportError:
        pass
    out = view3d(Z, POS, radii=torch.ones(9))
    assert hasattr(out, "get_proj")  # a matplotlib 3-D axes


def test_draw_2d_svg_and_png_highlight():
    svg = draw_2d(Z, POS, highlight_atoms=[2], highlight_bonds=[(1, 2)])
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    plain = draw_2d(Z, POS)
    assert svg != plain  # the highlight changes the drawing
    png = draw_2d(Z, POS, fmt="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_view_bad_inputs():
    with pytest.raises(ValueError, match="pos must have shape"):
        draw_molecule(Z, POS[:5])
    with pytest.raises(ValueError, match="radii"):
        draw_molecule(Z, POS, radii=[1.0, 2.0])
    with pytest.raises(ValueError, match="not bonded"):
        draw_2d(Z, POS, highlight_bonds=[(3, 8)])
    with pytest.raises(ValueError, match="edges"):
        draw_molecule(Z, POS, edges=torch.tensor([[0, 20], [1, 2]]))
    nan = POS.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        draw_molecule(Z, nan)
    with pytest.raises(ValueError, match="fmt"):
        draw_2d(Z, POS, fmt="gif")


def test_view3d_py3dmol_branch(monkeypatch):
    import sys
    import types

    calls = []

    class FakeView:
        def __init__(self, width, height):
            calls.append(("view", width, height))

        def __getattr__(self, name):
            return lambda *a, **k: calls.append((name, a, k))

    fake = types.ModuleType("py3Dmol")
    fake.view = FakeView
    monkeypatch.setitem(sys.modules, "py3Dmol", fake)
    out = view3d(Z, POS, radii=torch.tensor([1.0] + [0.0] * 8))
    assert isinstance(out, FakeView)
    names = [c[0] for c in calls]
    assert names.count("addSphere") == 1 and "addModel" in names
    model = next(c for c in calls if c[0] == "addModel")
    assert "V2000" in model[1][0]  # an MDL mol block with our 9 atoms
    assert model[1][0].count("\n") > 9
