"""Train-step throughput of refimpl's FNO against neuraloperator's (configured to
the same 2021 layout, and with its defaults), a profile of what bounds the step,
and a micro-benchmark of the spectral product (complex einsum vs mode-major batched
matmul).

Usage (from the repository root; see benchmarks/README.md)::

    python benchmarks/fno_throughput.py                  # defaults: 64x64, batch 20
    python benchmarks/fno_throughput.py --repeats 1      # quick correctness run
    python benchmarks/fno_throughput.py --device cuda --repeats 30

A train step is forward + relative-L2 loss + backward + Adam step, on the same random
batch for every model. The models are timed in turn in one process (the order
rotates every repeat), so slow drifts of the machine hit all of them; the reported
ratios are medians over repeats of (ours / theirs) samples per second. The matched
neuralop model (``use_channel_mlp=False``, a linear lifting, linear skips) must have
exactly refimpl's parameter count, or the script stops.

``neuraloperator`` is imported only here. If it is missing, refimpl's FNO and the
micro-benchmark are still measured and a message says how to install it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refimpl.operators import FNO  # noqa: E402
from refimpl.operators.benchmark import maybe_compile  # noqa: E402
from refimpl.operators.layers import (  # noqa: E402
    SpectralConv2d, spectral_product_bmm, spectral_product_einsum)
from refimpl.operators.losses import relative_l2  # noqa: E402


# ----------------------------------------------------------------------- models
#: neuraloperator's FNO in the original 2021 layout of Li et al. (and of
#: refimpl.operators.FNO): a linear lifting, spectral convolution + point-wise
#: linear skip per layer, no channel MLP after the spectral convolutions.
MATCHED_2021 = dict(use_channel_mlp=False, lifting_channel_ratio=0, fno_skip="linear")


def build_neuralop(args: argparse.Namespace, layout: str = "default"
                   ) -> tuple[nn.Module | None, str]:
    """neuralop's FNO with the same retained Fourier block, width, depth and
    projection width, or ``(None, reason)``. ``layout="matched"`` configures it to
    the 2021 layout (:data:`MATCHED_2021`); ``"default"`` keeps its defaults
    (a two-layer lifting, a channel MLP after every spectral convolution)."""
    try:
        from neuralop.models import FNO as NeuralopFNO
    except ImportError as err:
        return None, (f"neuraloperator is not importable ({err}). Install it for this "
                      "benchmark only: pip install 'refimpl[bench]'")
    # Ours keeps 2*m x m complex modes (k1 in [-m, m), k2 in [0, m)); neuralop keeps
    # n_modes[0] rows (half positive, half negative) and n_modes[-1]//2 + 1 rfft
    # columns, so n_modes = (2m, 2m - 1) selects the same block.
    m = args.modes
    sig = inspect.signature(NeuralopFNO.__init__).parameters
    kwargs = dict(n_modes=(2 * m, 2 * m - 1), hidden_channels=args.width,
                  in_channels=1, out_channels=1, n_layers=args.layers)
    if "projection_channel_ratio" in sig:  # neuraloperator >= 1.0
        kwargs["projection_channel_ratio"] = max(args.projection // args.width, 1)
    elif "projection_channels" in sig:  # 0.x
        kwargs["projection_channels"] = args.projection
    if "positional_embedding" in sig:
        kwargs["positional_embedding"] = "grid"
    else:  # old versions expect the coordinates as input channels
        kwargs["in_channels"] = 3
    if layout == "matched":
        missing = [k for k in MATCHED_2021 if k not in sig]
        if missing:
            return None, (f"this neuraloperator has no {missing}: cannot configure "
                          "the 2021 layout")
        kwargs.update(MATCHED_2021)
    try:
        model = NeuralopFNO(**kwargs)
    except TypeError as err:
        return None, f"could not build neuralop.models.FNO({kwargs}): {err}"
    model.expects_grid_channels = "positional_embedding" not in sig
    args_text = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    return model, f"neuralop.models.FNO({args_text})"


def build_ours(args: argparse.Namespace) -> nn.Module:
    return FNO(1, 1, modes=args.modes, width=args.width, n_layers=args.layers,
               grid=True, padding=0.0, projection_channels=args.projection)


# ----------------------------------------------------------------------- timing
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float
              ) -> Callable[[], float]:
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = relative_l2(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def time_steps(step: Callable[[], float], n: int, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync(device)
    return time.perf_counter() - t0


def count_real(model: nn.Module) -> int:
    """Real parameters (a complex weight counts twice)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def grid_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Append coordinate channels for old neuralop versions that expect them."""
    if not getattr(model, "expects_grid_channels", False):
        return x
    b, _, h, w = x.shape
    g1, g2 = torch.meshgrid(torch.linspace(0, 1, h, device=x.device),
                            torch.linspace(0, 1, w, device=x.device), indexing="ij")
    return torch.cat([x, g1.expand(b, 1, h, w), g2.expand(b, 1, h, w)], dim=1)


def contenders(args: argparse.Namespace, device: torch.device, x: torch.Tensor
               ) -> dict[str, dict]:
    """refimpl's FNO, neuralop's in the matched 2021 layout and neuralop's default;
    the matched one must have exactly our parameter count."""
    out: dict[str, dict] = {}
    ours = build_ours(args).to(device)
    config = ", ".join(f"{k}={v}" for k, v in build_ours(args).config().items())
    out["refimpl FNO"] = dict(model=ours, x=x, desc=f"refimpl.operators.FNO({config})")
    for key, layout in (("neuralop FNO, 2021 layout", "matched"),
                        ("neuralop FNO, default", "default")):
        theirs, desc = build_neuralop(args, layout)
        if theirs is None:
            print(f"NOTE: {desc}\n      Skipping {key}.\n")
            continue
        theirs = theirs.to(device)
        out[key] = dict(model=theirs, x=grid_input(theirs, x), desc=desc)
    n_ours = count_real(ours)
    for key, c in out.items():
        c["params"] = count_real(c["model"])
    matched = out.get("neuralop FNO, 2021 layout")
    if matched is not None and matched["params"] != n_ours:
        raise AssertionError(
            f"the matched neuralop FNO has {matched['params']:,} parameters, refimpl's "
            f"{n_ours:,}: the layouts differ ({matched['desc']})")
    if args.compile:
        for c in out.values():
            c["model"] = maybe_compile(c["model"], c["x"])
    return out


def throughput(args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(0)
    res, batch = args.resolution, args.batch
    x = torch.randn(batch, 1, res, res, device=device)
    y = torch.randn(batch, 1, res, res, device=device)
    models = contenders(args, device, x)
    if len(models) == 1:
        print("      Measuring refimpl's FNO alone.\n")
    for c in models.values():
        c["step"] = make_step(c["model"], c["x"], y, args.lr)
        c["rates"] = []
        time_steps(c["step"], args.warmup, device)  # warm-up, not recorded
    names = list(models)
    for r in range(args.repeats):
        k = r % len(names)  # rotate the order, so drifts hit every model alike
        for name in names[k:] + names[:k]:
            seconds = time_steps(models[name]["step"], args.steps, device)
            models[name]["rates"].append(args.steps * batch / seconds)
    out = {"device": str(device), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "config": vars(args).copy(), "models": {},
           "ratios": {}}
    for name, c in models.items():
        out["models"][name] = dict(description=c["desc"], params=c["params"],
                                   rates=c["rates"],
                                   median=statistics.median(c["rates"]))
    ours = models[names[0]]["rates"]
    for name in names[1:]:
        ratios = [a / b for a, b in zip(ours, models[name]["rates"])]
        out["ratios"][name] = dict(median=statistics.median(ratios),
                                   min=min(ratios), max=max(ratios), all=ratios)
    if args.profile:
        out["profile"] = {name: profile_step(models[name]["step"], args.profile_rows)
                          for name in names[:2]}
    return out


_CATEGORIES = (
    ("GEMM (mm, bmm, addmm, baddbmm, matmul)", ("mm", "bmm", "addmm", "baddbmm",
                                                 "matmul", "linear", "conv")),
    ("FFT", ("fft",)),
    ("copies / layout (copy_, cat, pad, contiguous)", ("copy", "cat", "pad",
                                                        "contiguous", "clone")),
    ("element-wise / reductions", ("add", "mul", "gelu", "sum", "div", "sub",
                                   "mean", "sqrt", "norm", "pow", "where", "neg")),
)


def profile_step(step: Callable[[], float], rows: int = 8) -> dict:
    """One profiled train step (after the warm-up): the share of self CPU time by
    kind of operator, and the top operators."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(3):
            step()
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    shares: dict[str, float] = {}
    for e in events:
        name = e.key[len("aten::"):]
        label = next((lab for lab, keys in _CATEGORIES
                      if any(k in name for k in keys)), "other")
        shares[label] = shares.get(label, 0.0) + e.self_cpu_time_total / total
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:rows]
    return {"shares": dict(sorted(shares.items(), key=lambda kv: -kv[1])),
            "top": [(e.key, e.self_cpu_time_total / total, e.count // 3) for e in top]}


def micro(args: argparse.Namespace, device: torch.device) -> dict:
    """The spectral product alone and the whole spectral layer, einsum vs bmm."""
    torch.manual_seed(0)
    m, b, c = args.modes, args.batch, args.width
    x_ft = torch.randn(b, c, 2 * m, m, dtype=torch.complex64, device=device)
    w = torch.randn(c, c, 2 * m, m, dtype=torch.complex64, device=device)
    x_mm = x_ft.permute(2, 3, 0, 1).reshape(2 * m * m, b, c).contiguous()
    w_mm = w.permute(2, 3, 0, 1).reshape(2 * m * m, c, c).contiguous()

    def bmm_with_layout():
        xm = x_ft.permute(2, 3, 0, 1).reshape(2 * m * m, b, c)
        out = spectral_product_bmm(xm, w_mm)
        return out.view(2 * m, m, b, c).permute(2, 3, 0, 1).contiguous()

    layer = SpectralConv2d(c, c, m, m).to(device)
    layer_fft = SpectralConv2d(c, c, m, m, transform="fft").to(device)
    xl = torch.randn(b, c, args.resolution, args.resolution, device=device,
                     requires_grad=True)

    def layer_fast():
        layer(xl).sum().backward()

    def layer_pruned_fft():
        layer_fft(xl).sum().backward()

    def layer_ref():
        layer.forward_reference(xl).sum().backward()

    cases = {
        "product: einsum (B,Ci,2m,m)": lambda: spectral_product_einsum(x_ft, w),
        "product: bmm, mode-major operands": lambda: spectral_product_bmm(x_mm, w_mm),
        "product: bmm incl. layout copies": bmm_with_layout,
        "layer fwd+bwd: rfft2/einsum/irfft2 (textbook)": layer_ref,
        "layer fwd+bwd: pruned FFT + bmm": layer_pruned_fft,
        "layer fwd+bwd: truncated DFT GEMMs + bmm (default)": layer_fast,
    }
    torch.testing.assert_close(bmm_with_layout(), spectral_product_einsum(x_ft, w),
                               rtol=1e-4, atol=1e-4)
    n = max(args.steps * 5, 1)
    results: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():
        time_steps(fn, args.warmup, device)
    for r in range(args.repeats):
        items = list(cases.items())
        for name, fn in (items if r % 2 == 0 else items[::-1]):
            results[name].append(1e3 * time_steps(fn, n, device) / n)
    return {k: statistics.median(v) for k, v in results.items()}


# ----------------------------------------------------------------------- report
def report(tp: dict, mc: dict) -> str:
    lines = [f"device: {tp['device']}, torch {tp['torch']}, {tp['threads']} threads; "
             f"batch {tp['config']['batch']}, {tp['config']['resolution']}^2, "
             f"modes {tp['config']['modes']}, width {tp['config']['width']}, "
             f"{tp['config']['layers']} layers, {tp['config']['repeats']} repeats x "
             f"{tp['config']['steps']} steps", "",
             "| model | parameters | train samples/s (median) | min | max |",
             "|---|---:|---:|---:|---:|"]
    for name, m in tp["models"].items():
        lines.append(f"| {name} | {m['params']:,} | {m['median']:.1f} | "
                     f"{min(m['rates']):.1f} | {max(m['rates']):.1f} |")
    if tp["ratios"]:
        lines += ["", "| throughput ratio refimpl / ... | median | per-repeat min | max |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {name} | **{r['median']:.2f}x** | {r['min']:.2f} | {r['max']:.2f} |"
                  for name, r in tp["ratios"].items()]
    for name, prof in tp.get("profile", {}).items():
        lines += ["", f"profile of one train step, {name} (share of self CPU time):", ""]
        lines += [f"- {label}: {100 * share:.0f} %" for label, share in
                  prof["shares"].items()]
        lines += ["", "| operator | share | calls per step |", "|---|---:|---:|"]
        lines += [f"| {k} | {100 * share:.1f} % | {calls} |"
                  for k, share, calls in prof["top"]]
    lines += ["", "| spectral micro-benchmark | ms (median) |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in mc.items()]
    lines += [""] + [f"- {name}: {m['description']}"
                     for name, m in tp["models"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--modes", type=int, default=12)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--projection", type=int, default=128,
                   help="hidden channels of the projection (both models)")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--steps", type=int, default=5, help="train steps per repeat")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile both models (falls back to eager on failure)")
    p.add_argument("--json", type=Path, default=None, help="also write raw results")
    p.add_argument("--no-profile", dest="profile", action="store_false",
                   help="skip the torch.profiler summary of one train step")
    p.add_argument("--profile-rows", type=int, default=8)
    args = p.parse_args(argv)
    for name in ("repeats", "steps", "batch", "resolution", "modes", "width", "layers"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.resolution < 2 * args.modes:
        p.error(f"--resolution must be at least 2 * modes = {2 * args.modes}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    tp = throughput(args, device)
    mc = micro(args, device)
    print(report(tp, mc))
    if args.json is not None:
        args.json.write_text(json.dumps({"throughput": tp, "micro": mc}, indent=2,
                                        default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
