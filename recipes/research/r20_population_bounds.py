"""r20: bounding the adapted LLRs by what the population's own trials support (issue 18's
misleading-LR targets: speechocean762 telephone with 20 speakers keeps 1.23 % different-
speaker LR > 100 after the typicality refit; Common Voice keeps 1.1-1.3 % same-speaker
LR < 1/100, at the shipped lower ELUB bound).

On r19's in-memory rebuild of the shipped chain with the current population method (the
beta scorer's typicality refitted on the population, `plain+typicality`), two corrections
that use the population's own labelled recordings (their within-population pairs, scored by
the same adapted scorer and calibration):
- `pop_elub`: the ELUB bounds of the population's own pairs, intersected with the shipped
  ones (an LR never beyond what the relevant population's data supports);
- `bound_scale`: all LLRs multiplied by the largest factor in (0, 1] (steps of 0.05) that
  makes the population's different-speaker LLRs respect `P(LR >= x) <= 1/x` at the levels
  its pair count can test (`balr.lr_bound`); 1 where they already do.

    PYTHONPATH=src python recipes/research/r20_population_bounds.py [--base runs/r19_base]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from r19_adapted_rebuild import (  # noqa: E402
    CORPORA,
    VARIANTS,
    build_chain,
    load_base,
    read_folder,
    trial_figures,
)
from rcommon import binarize, lr_matrix  # noqa: E402

from balr.calibration import elub_bounds  # noqa: E402
from balr.lr_bound import bound_of_llrs  # noqa: E402
from balr.population import PopulationAdaptation  # noqa: E402

LN10 = np.log(10)


def calibrated(scorer, calibrator, bits, seconds, i, j):
    raw = lr_matrix(scorer, bits)[i, j]
    return calibrator.transform(raw, np.stack([seconds[i], seconds[j]], axis=1))


def population_elub(adapted, calibrator, bits, seconds, pop, speakers, shipped):
    """`(bounds, lower10, upper10, LLRs, labels)`: the ELUB bounds (log10) of the population
    rows `pop`'s own pairs under the adapted scorer, and as natural-log bounds inside the
    calibration's `shipped` ones; the pairs' LLRs and same-speaker labels."""
    a, b = np.triu_indices(len(pop), k=1)
    labels = (speakers[a] == speakers[b]).astype(np.int64)
    llrs = calibrated(adapted, calibrator, bits, seconds, pop[a], pop[b])
    low10, high10 = elub_bounds(llrs / LN10, labels)
    bounds = np.array([max(shipped[0], low10 * LN10), min(shipped[1], high10 * LN10)])
    return bounds, low10, high10, llrs, labels


def bound_scale(llrs: np.ndarray, n_speakers: int) -> float:
    """The largest factor (steps of 0.05) whose scaled LLRs respect the bound."""
    for factor in np.arange(1.0, 0.0, -0.05):
        test = bound_of_llrs(factor * llrs, n_speakers)
        if test is None or not test.broken:
            return float(factor)
    return 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, default=Path("runs/r19_base"))
    parser.add_argument("--bench", type=Path, default=Path("runs/population_robustness"))
    parser.add_argument("--out", type=Path, default=Path("runs/r20_population_bounds.json"))
    args = parser.parse_args()
    items, emb, seconds = load_base(args.base)
    model, scorer, calibrator = build_chain(items, emb, seconds, args.base)
    shipped = np.array([calibrator.lower_bound_, calibrator.upper_bound_])
    results = []
    for corpus in CORPORA:
        for variant in VARIANTS:
            every, x, sec, pops, i, j, labels = read_folder(args.bench / corpus / variant)
            bits = binarize(model, x.astype(np.float32))
            for size in (5, 20):
                pop = np.flatnonzero(every.id.isin(pops[size].id).to_numpy())
                adapted = PopulationAdaptation().fit(bits[pop]).adapt(scorer)
                llr = calibrated(adapted, calibrator, bits, sec, i, j)
                spk = every.speaker.to_numpy()[pop]
                bounds, low10, high10, pop_llr, pop_labels = population_elub(
                    adapted, calibrator, bits, sec, pop, spk, shipped
                )
                factor = bound_scale(pop_llr[pop_labels == 0], len(set(spk)))
                row = {
                    "corpus": corpus, "variant": variant, "population": size,
                    "pop_elub_log10": [round(low10, 2), round(high10, 2)],
                    "bound_scale_factor": round(factor, 2),
                    "typicality": trial_figures(llr, labels),
                    "pop_elub": trial_figures(np.clip(llr, *bounds), labels),
                    "bound_scale": trial_figures(factor * llr, labels),
                }  # fmt: skip
                results.append(row)
                print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
