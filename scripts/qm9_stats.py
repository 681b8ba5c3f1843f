"""QM9 data statistics and load cost (offline, from the qm9pack wheel).

    python scripts/qm9_stats.py            # statistics of the full set and its splits
    python scripts/qm9_stats.py --fresh    # also time a first (parsing) load into a
                                           # temporary cache, then a cached load

Prints the atom-count histograms, element frequencies and interatomic-distance summary
of QM9 (with and without hydrogens), EDM's split sizes, and the data row of EDM's
evaluation (atom/molecule stability, RDKit validity) on a seeded subset.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true",
                        help="time a first load into an empty temporary cache")
    parser.add_argument("--eval-molecules", type=int, default=5000,
                        help="molecules (seeded subset) for the stability/validity row")
    args = parser.parse_args()

    if args.fresh:
        with tempfile.TemporaryDirectory() as tmp:
            old = os.environ.get("REFIMPL_CACHE")
            os.environ["REFIMPL_CACHE"] = tmp
            from refimpl.molecules import load_qm9

            t0 = time.perf_counter()
            load_qm9()
            t1 = time.perf_counter()
            load_qm9(progress=False)
            t2 = time.perf_counter()
            if old is None:
                del os.environ["REFIMPL_CACHE"]
            else:
                os.environ["REFIMPL_CACHE"] = old
        print(f"first load (parse + cache): {t1 - t0:.1f} s; "
              f"cached load: {t2 - t1:.2f} s")

    from refimpl.molecules import evaluate_molecules, load_qm9, molecule_statistics

    for remove_h in (False, True):
        ds = load_qm9(remove_h=remove_h, progress=False)
        print(f"\n== {ds.summary()}")
        for name, view in [("all", ds), ("train", ds.split("train"))]:
            st = molecule_statistics(view, max_distance_molecules=5000)
            print(f"[{name}] molecules {st['num_molecules']}, atoms/molecule mean "
                  f"{st['num_atoms_mean']:.2f}, max {st['num_atoms_max']}, mode "
                  f"{st['num_atoms_mode']}, heavy max {st['num_heavy_atoms_max']}")
            print(f"[{name}] atom counts: {st['num_atoms_hist']}")
            print(f"[{name}] elements: {st['element_counts']}")
            print(f"[{name}] distances (5,000 molecules): min "
                  f"{st['distance_min']:.3f}, mean {st['distance_mean']:.3f}, "
                  f"max {st['distance_max']:.3f} Å")
        pick = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
        sub = ds.subset(pick[:args.eval_molecules])
        out = evaluate_molecules(sub.dense())
        print(f"EDM metrics on {len(sub)} molecules: " + ", ".join(
            f"{k} {v:.4f}" for k, v in out.items() if isinstance(v, float)))


if __name__ == "__main__":
    main()
