"""Train-step time of chapter 4's EGNN: the fused implementation
(:mod:`refimpl.diffusion.egnn`) against the plain-autograd formulation it replaced
(:mod:`refimpl.diffusion.egnn_reference`), in one process.

Usage (from the repository root; see benchmarks/README.md)::

    python benchmarks/egnn_step.py                    # book configuration, QM9 batches
    python benchmarks/egnn_step.py --synthetic        # random molecules (no QM9 needed)
    python benchmarks/egnn_step.py --repeats 1 --steps 2   # quick correctness run
    python benchmarks/egnn_step.py --profile          # where the fused step spends time

A train step is what ``refimpl.training.fit`` does per batch in chapter 4: the EDM
loss (forward), backward, gradient-norm clipping and an AdamW step, for the book
preset (heavy-atom QM9, batch 64, EGNN 64 x 4, T = 200). Two models with the same
initial weights see the same batches; the two implementations are timed alternately
(the order flips every repeat) so slow drifts of a shared machine hit both, and the
script prints the median over repeats of the per-repeat ratio old / new.

The second part repeats the comparison after ``mallopt`` raises glibc's mmap and trim
thresholds (CPU only, Linux): by default every freed pair-sized tensor (about 1.3 MB
here) is returned to the kernel and its pages fault in again on the next step, which
costs as much as some of the arithmetic. ``--no-malloc`` skips that part.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refimpl.diffusion import EquivariantDiffusion, crop_collate  # noqa: E402
from refimpl.diffusion.egnn_reference import egnn_reference_forward  # noqa: E402


def _batches(args, K):
    if args.synthetic:
        g = torch.Generator().manual_seed(0)
        hist = torch.tensor([0, 0, 0.01, 0.01, 0.01, 0.01, 0.01, 0.03, 0.13, 0.78])
        out = []
        for _ in range(args.batches):
            n = torch.multinomial(hist, args.batch, True, generator=g)
            N = int(n.max())
            mask = (torch.arange(N)[None] < n[:, None]).float().unsqueeze(-1)
            x = torch.randn(args.batch, N, 3, generator=g) * 1.2 * mask
            oh = torch.nn.functional.one_hot(
                torch.randint(0, K, (args.batch, N), generator=g), K
            ).float() * mask
            out.append((x, oh, mask))
        return out
    from refimpl.diffusion import molecule_tensors
    from refimpl.molecules.qm9 import load_qm9

    train = load_qm9(remove_h=True, progress=False).split("train")
    x, oh, mask = molecule_tensors(train, (6, 7, 8, 9))
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(args.batches):
        idx = torch.randint(0, x.shape[0], (args.batch,), generator=g)
        out.append(crop_collate(list(zip(x[idx], oh[idx], mask[idx]))))
    return out


def _make(args, K, reference: bool):
    torch.manual_seed(0)
    model = EquivariantDiffusion(
        K, 3, T=args.T, hidden_nf=args.hidden, n_layers=args.layers
    ).to(args.device)
    if reference:
        dyn = model.dynamics
        dyn.forward = lambda *a, **k: egnn_reference_forward(dyn, *a, **k)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=1e-12)
    return model, opt


def _step(model, opt, batch, gen):
    opt.zero_grad(set_to_none=True)
    loss = model(*batch, t_max=model.T, generator=gen)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
    opt.step()
    return float(loss.detach())


def _time(model, opt, batches, steps, device):
    gen = torch.Generator(device=device).manual_seed(1)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for i in range(steps):
        _step(model, opt, batches[i % len(batches)], gen)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / max(steps, 1)


def compare(args, batches, K, label):
    new = _make(args, K, reference=False)
    old = _make(args, K, reference=True)
    for m, o in (new, old):  # warm-up
        _time(m, o, batches, args.warmup, args.device)
    t_new, t_old, ratios = [], [], []
    for r in range(args.repeats):
        order = [("new", new), ("old", old)]
        if r % 2:
            order.reverse()
        res = {}
        for name, (m, o) in order:
            res[name] = _time(m, o, batches, args.steps, args.device)
        t_new.append(res["new"])
        t_old.append(res["old"])
        ratios.append(res["old"] / res["new"])
    out = {
        "label": label,
        "old_ms_median": 1e3 * statistics.median(t_old),
        "new_ms_median": 1e3 * statistics.median(t_new),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }
    print(
        f"[{label}] old {out['old_ms_median']:.1f} ms/step, new "
        f"{out['new_ms_median']:.1f} ms/step; old/new median {out['ratio_median']:.2f}x"
        f" (per-repeat min {out['ratio_min']:.2f}, max {out['ratio_max']:.2f})",
        flush=True,
    )
    return out


def saved_activation_bytes(model, batch) -> int:
    """Bytes of the distinct tensors autograd keeps for the backward of one loss
    (a deterministic measure, unlike wall time on a shared machine)."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    gen = torch.Generator(device=batch[0].device).manual_seed(1)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(*batch, t_max=model.T, generator=gen)
    del loss
    return sum(seen.values())


def step_flops(model, opt, batch) -> int:
    """FLOPs of one train step (matrix products only, as
    :mod:`torch.utils.flop_counter` counts them), deterministic."""
    from torch.utils.flop_counter import FlopCounterMode

    gen = torch.Generator(device=batch[0].device).manual_seed(1)
    with FlopCounterMode(display=False) as counter:
        _step(model, opt, batch, gen)
    return int(counter.get_total_flops())


def gemm_rate(rows: int, nf: int, device, seconds: float = 1.0) -> float:
    """FLOP/s of the pair MLP's dominant product, ``[rows, nf] @ [nf, nf]``, on a
    hot buffer in a tight loop: the rate a step could reach if it did nothing but
    these products."""
    a = torch.randn(rows, nf, device=device)
    w = torch.randn(nf, nf, device=device)
    out = torch.empty(rows, nf, device=device)
    for _ in range(10):
        torch.mm(a, w, out=out)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(20):
            torch.mm(a, w, out=out)
        n += 20
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return 2.0 * rows * nf * nf * n / (time.perf_counter() - t0)


def bound(args, batches, K, results) -> dict:
    """What bounds the step: its matrix-product FLOPs over the rate of the same
    products on a hot buffer give the time of the products alone, and the measured
    step over that time bounds the speed-up of any rewrite that keeps the FLOPs."""
    rows = args.batch * int(batches[0][2].shape[1]) ** 2
    rate = gemm_rate(rows, args.hidden, args.device)
    out = {"gemm_gflops_hot": rate / 1e9}
    for name, ref in (("old", True), ("new", False)):
        model, opt = _make(args, K, reference=ref)
        flops = step_flops(model, opt, batches[0])
        floor_ms = 1e3 * flops / rate
        step_ms = results[0][f"{name}_ms_median"]
        out[name] = {"gflop_per_step": flops / 1e9, "products_alone_ms": floor_ms,
                     "step_ms": step_ms, "max_speedup_same_flops": step_ms / floor_ms}
        print(
            f"[bound] {name}: {flops / 1e9:.2f} GFLOP of matrix products per step; "
            f"at the hot-buffer rate of the [{rows}, {args.hidden}] x "
            f"[{args.hidden}, {args.hidden}] product ({rate / 1e9:.1f} GFLOP/s) they "
            f"take {floor_ms:.1f} ms of the measured {step_ms:.1f} ms, so a rewrite "
            f"with the same products is at most {step_ms / floor_ms:.2f}x faster",
            flush=True,
        )
    return out


def tune_malloc() -> bool:
    """Raise glibc's mmap/trim thresholds (process-wide); False if not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    ok = libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
    ok &= libc.mallopt(M_TRIM_THRESHOLD, 1 << 31 - 1)
    ok &= libc.mallopt(M_TOP_PAD, 256 << 20)
    return bool(ok)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--T", type=int, default=200)
    p.add_argument("--batches", type=int, default=16)
    p.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--no-malloc", action="store_true")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    args.device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    K = 4
    batches = [
        tuple(t.to(args.device) for t in b) for b in _batches(args, K)
    ]
    atoms = sum(float(b[2].sum()) for b in batches) / (args.batch * len(batches))
    print(
        f"torch {torch.__version__}, device {args.device}, threads "
        f"{torch.get_num_threads()}, batch {args.batch}, EGNN {args.hidden} x "
        f"{args.layers}, T {args.T}, {'synthetic' if args.synthetic else 'QM9'} "
        f"batches (mean atoms {atoms:.2f})",
        flush=True,
    )
    mem = {
        name: saved_activation_bytes(_make(args, K, reference=ref)[0], batches[0])
        for name, ref in (("old", True), ("new", False))
    }
    print(
        f"tensors saved for the backward of one step: old {mem['old'] / 2**20:.1f} MiB"
        f", new {mem['new'] / 2**20:.1f} MiB",
        flush=True,
    )
    results = [compare(args, batches, K, "default allocator")]
    if not args.no_malloc and args.device.type == "cpu" and tune_malloc():
        results.append(compare(args, batches, K, "mallopt thresholds raised"))
    floor = bound(args, batches, K, results)
    if args.profile:
        model, opt = _make(args, K, reference=False)
        _time(model, opt, batches, 3, args.device)
        gen = torch.Generator(device=args.device).manual_seed(1)
        with torch.profiler.profile() as prof:
            for i in range(5):
                _step(model, opt, batches[i % len(batches)], gen)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    if args.json:
        args.json.write_text(
            json.dumps({"saved_bytes": mem, "timings": results, "bound": floor}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
