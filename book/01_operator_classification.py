# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Operator classification: spatial- and functional-domain models
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sciml-refimpl/interpretable-sciml-book/blob/main/book/01_operator_classification.ipynb)
#
# :::{admonition} Audience & Objectives
# :class: tip
# Prerequisites: PyTorch basics, Fourier series, the idea of a PDE.
#
# After this chapter you should be able to
# - say whether a neural operator is a *spatial-domain* or a *functional-domain*
#   model, with a three-question criterion;
# - generate wave and Darcy data with `refimpl.pde` and train several operators
#   on them side by side with one training loop;
# - explain which families transfer zero-shot to a finer grid, and why.
# :::

# %% tags=["remove-cell"]
# NBVAL_SKIP
# Colab only: install refimpl and the few packages Colab lacks (never torch).
import sys

if "google.colab" in sys.modules:
    # %pip install -q "refimpl[molecules] @ git+https://github.com/sciml-refimpl/interpretable-sciml-book@main"
    pass

# %% [markdown]
# :::{note}
# **Running this notebook.** On Colab, use the rocket button above, then
# *Runtime → Change runtime type → GPU*; the first (hidden) cell installs
# `refimpl`. Locally, run it in the `.venv` that `make test` creates. The scale
# (`smoke`, `book` or `paper`) comes from `REFIMPL_SCALE`; see the
# {doc}`introduction <intro>`.
# :::

# %%
import matplotlib.pyplot as plt
import torch

import refimpl

PRESETS = {
    "smoke": dict(n_train=16, n_test=8, epochs=1),
    "book": dict(n_train=800, n_test=200, epochs=20),
    "paper": dict(n_train=1000, n_test=200, epochs=500),
}
SCALE = refimpl.scale()
P = refimpl.preset(PRESETS)
device = refimpl.device()
refimpl.seed_everything(0)
print(f"refimpl {refimpl.__version__} | scale {SCALE} | device {device}")

# %% [markdown]
# ## Two families of neural operators
#
# A neural operator approximates a map between function spaces,
# $\mathcal G: a \mapsto u$, with a network whose weights do not depend on the
# grid the functions are sampled on {cite}`kovachki2023neural`. Following
# {cite}`gao2025hidden`, ask three questions of any architecture:
#
# 1. **Where do the learnable kernel parameters live?** On the grid (stencils,
#    convolution kernels, attention between points), or on the coefficients of
#    a function basis (Fourier or DCT modes, a learned trunk basis)?
# 2. **Where does the non-linearity act?** On values at grid points, or on basis
#    coefficients?
# 3. **Is the output assembled as a basis expansion** $\sum_k b_k\,\tau_k(y)$?
#
# Grid parameters and grid activations make a **spatial-domain** model; basis
# parameters with basis activations or a basis-expansion output make a
# **functional-domain** model; both kinds of operator in one model make a
# **dual-space** model.
#
# | Model | Weights live | Non-linearity on | Family |
# |---|---|---|---|
# | U-Net / CNN | 3×3 kernels on the grid | grid values | spatial |
# | CNO | 3×3 kernels, anti-aliased up/down-sampling | grid values (2× up-sampled) | spatial |
# | Galerkin / attention | attention between grid points | grid values | spatial |
# | GNO | kernel on neighbourhoods of points | point values | spatial |
# | FNO {cite}`li2021fno` | truncated Fourier modes | grid values (hybrid) | functional |
# | DeepONet | learned trunk basis $\tau_k(y)$ | branch coefficients | functional |
# | Transform once (T1) | DCT coefficients | coefficients | functional |
# | FNO + 3×3 conv, CROP/CRNO, U-FNO | both | both | dual-space |
#
# FNO is a hybrid: its kernel lives on a truncated Fourier basis, but its
# point-wise path and GELU act on the grid. We file it with the functional
# models because its *learned kernel* lives on the basis; this placement is our
# reading, not one the paper states.

# %% [markdown]
# ## Summary
#
# - Spatial-domain models learn kernels on the grid; functional-domain models
#   learn on the coefficients of a function basis.
# - The three-question criterion places every architecture, including hybrids
#   such as FNO and dual-space models.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-classify-ufno
# Classify U-FNO (an FNO whose layers add a U-Net path) with the three
# questions.
# ```
#
# ```{solution} ex-classify-ufno
# :class: dropdown
# Its Fourier layers keep weights on the basis and its U-Net path keeps 3×3
# kernels on the grid: both kinds of operator are present, so it is a
# dual-space model.
# ```
#
# ## References
#
# The classification follows {cite}`gao2025hidden`; neural operators in general
# are surveyed in {cite}`kovachki2023neural`; FNO is {cite}`li2021fno`. Full
# entries are in the {doc}`bibliography <references>`.
