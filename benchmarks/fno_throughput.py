"""Train-step throughput of refimpl's FNO against neuraloperator's, and a
micro-benchmark of the spectral product (complex einsum vs mode-major batched matmul).

Usage (from the repository root; see benchmarks/README.md)::

    python benchmarks/fno_throughput.py                  # defaults: 64x64, batch 20
    python benchmarks/fno_throughput.py --repeats 1      # quick correctness run
    python benchmarks/fno_throughput.py --device cuda --repeats 30

A train step is forward + relative-L2 loss + backward + Adam step, on the same random
batch for both models. The two models are timed alternately in one process (the order
flips every repeat), so slow drifts of the machine hit both; the reported ratio is the
median over repeats of (ours / neuralop) samples per second.

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
def build_neuralop(args: argparse.Namespace) -> tuple[nn.Module | None, str]:
    """neuralop's FNO with the same retained Fourier block, width, depth and
    projection width, or ``(None, reason)``."""
    try:
        from neuralop.models import FNO as NeuralopFNO
    except ImportError as err:
        return None, (f"neuraloperator is not importable ({err}). Install it for this "
                      "benchmark only: pip install neuraloperator")
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


def throughput(args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(0)
    res, batch = args.resolution, args.batch
    x = torch.randn(batch, 1, res, res, device=device)
    y = torch.randn(batch, 1, res, res, device=device)
    contenders: dict[str, dict] = {}
    ours = build_ours(args).to(device)
    if args.compile:
        ours = maybe_compile(ours, x)
    config = ", ".join(f"{k}={v}" for k, v in build_ours(args).config().items())
    contenders["refimpl FNO"] = dict(model=ours, x=x,
                                     desc=f"refimpl.operators.FNO({config})")
    theirs, desc = build_neuralop(args)
    if theirs is None:
        print(f"NOTE: {desc}\n      Measuring refimpl's FNO alone.\n")
    else:
        theirs = theirs.to(device)
        x_theirs = x
        if theirs.expects_grid_channels:
            g = torch.linspace(0, 1, res, device=device)
            g1, g2 = torch.meshgrid(g, g, indexing="ij")
            x_theirs = torch.cat([x, g1.expand(batch, 1, res, res),
                                  g2.expand(batch, 1, res, res)], dim=1)
        if args.compile:
            theirs = maybe_compile(theirs, x_theirs)
        contenders["neuralop FNO"] = dict(model=theirs, x=x_theirs, desc=desc)
    for c in contenders.values():
        c["params"] = sum(p.numel() * (2 if p.is_complex() else 1)
                          for p in c["model"].parameters())
        c["step"] = make_step(c["model"], c["x"], y, args.lr)
        c["rates"] = []
        time_steps(c["step"], args.warmup, device)  # warm-up, not recorded
    names = list(contenders)
    for r in range(args.repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            seconds = time_steps(contenders[name]["step"], args.steps, device)
            contenders[name]["rates"].append(args.steps * batch / seconds)
    out = {"device": str(device), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "config": vars(args).copy(), "models": {}}
    for name, c in contenders.items():
        out["models"][name] = dict(description=c["desc"], params=c["params"],
                                   rates=c["rates"],
                                   median=statistics.median(c["rates"]))
    if len(names) == 2:
        ratios = [a / b for a, b in zip(contenders[names[0]]["rates"],
                                        contenders[names[1]]["rates"])]
        out["ratio_median"] = statistics.median(ratios)
        out["ratios"] = ratios
    return out


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
    if "ratio_median" in tp:
        lines += ["", f"median throughput ratio refimpl / neuralop: "
                      f"**{tp['ratio_median']:.2f}x** (per-repeat min "
                      f"{min(tp['ratios']):.2f}, max {max(tp['ratios']):.2f})"]
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
