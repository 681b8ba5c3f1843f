import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from refimpl.plotting import field_grid, to_numpy, use_book_style  # noqa: E402


def test_field_grid_draws_each_field_transposed_with_limits():
    use_book_style()
    a = torch.arange(12.0).reshape(3, 4) - 5
    fig = field_grid([a, -2 * a, a], ["a", "b", "c"], ncols=2, shared=True)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 3 and axes[0].get_title() == "a"
    img = axes[0].images[0]
    np.testing.assert_array_equal(img.get_array(), to_numpy(a).T)
    assert img.get_clim() == (-12.0, 12.0)  # shared, symmetric
    plt.close(fig)


def test_field_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        field_grid([])
    with pytest.raises(ValueError, match="2-D"):
        field_grid([torch.zeros(2, 2, 2)])
    with pytest.raises(ValueError, match="titles"):
        field_grid([torch.zeros(2, 2)], ["a", "b"])
