"""RISE batched over many molecules against one molecule at a time.

Usage (from the repository root)::

    python benchmarks/rise_batching.py                       # 64 molecules, 20 steps
    python benchmarks/rise_batching.py --molecules 128 --repeats 5 --threads 2

The book-scale SchNet (the committed weights) explains ``--molecules`` QM9 test
molecules with ``--steps`` Adam steps, either in one batched optimisation
(:func:`refimpl.explain.rise.explain` on the whole batch) or in a Python loop over
the molecules. The two are timed alternately in one process (the order flips
every repeat), so slow drifts of a shared machine hit both; the script prints the
median over repeats of the per-repeat ratio loop / batched, and checks that both
give the same radii.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import refimpl
from refimpl.experiments import rise as X


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--molecules", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--budget", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = refimpl.device()
    P = refimpl.preset(X.PRESETS, "book")
    data = X.load_data(P)
    model, _ = X.load_or_train("U0", "book", data, log=lambda s: None,
                               device=device)
    model = model.to(device).eval()
    z, pos, batch = (t.to(device) for t in
                     X.explain_set(data["test"], args.molecules, seed=7))
    n = int(batch.max()) + 1
    rise = dict(budget=args.budget, steps=args.steps, lr=1e-2)
    sync = (torch.cuda.synchronize if device.type == "cuda" else lambda: None)

    def batched():
        return X.explain(model, z, pos, batch, **rise).radius

    def loop():
        return torch.cat([X.explain(model, z[batch == g], pos[batch == g], **rise)
                          .radius for g in range(n)])

    diff = float((batched() - loop()).abs().max())  # also a warm-up
    ratios, times = [], {"batched": [], "loop": []}
    for rep in range(args.repeats):
        order = (("batched", batched), ("loop", loop))
        if rep % 2:
            order = order[::-1]
        for name, fn in order:
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
        ratios.append(times["loop"][-1] / times["batched"][-1])
    edges = model.edges(pos, batch).size(1)
    print(f"{n} molecules ({z.numel()} atoms, {edges} edges), {args.steps} steps, "
          f"{torch.get_num_threads()} thread(s), {device}")
    print(f"batched: {statistics.median(times['batched']):.2f} s; one at a time: "
          f"{statistics.median(times['loop']):.2f} s; loop / batched = "
          f"{statistics.median(ratios):.1f}x (median of {args.repeats}; "
          f"all: {', '.join(f'{r:.1f}' for r in ratios)}); "
          f"largest radius difference {diff:.1e} Å")


if __name__ == "__main__":
    main()
