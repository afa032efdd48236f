"""r21: the typicality refit's shrinkage once the population's own ELUB bounds cap the LRs
(issue 18: speechocean762 hall with 5 speakers, BA-LR EER 12.41 -> 13.44 % with the shipped
T = 10 pseudo-recordings). r09 kept T = 10 because a stronger shrinkage left misleading
LRs on the channels; with the population's own bounds (`balr.population_bounds`) those are
capped, so larger T is measured again: EER, Cllr and misleading shares, the refit always
applied, then the population's own bounds, on r19's in-memory rebuild of the shipped chain.

    PYTHONPATH=src:recipes python recipes/research/r21_shrinkage_with_bounds.py
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
from r20_population_bounds import calibrated, population_elub  # noqa: E402
from rcommon import binarize  # noqa: E402

from balr.population import PopulationAdaptation  # noqa: E402

SHRINKAGES = (10.0, 30.0, 60.0, 120.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, default=Path("runs/r19_base"))
    parser.add_argument("--bench", type=Path, default=Path("runs/population_robustness"))
    args = parser.parse_args()
    items, emb, seconds = load_base(args.base)
    model, scorer, calibrator = build_chain(items, emb, seconds, args.base)
    shipped = np.array([calibrator.lower_bound_, calibrator.upper_bound_])
    for corpus in CORPORA:
        for variant in VARIANTS:
            every, x, sec, pops, i, j, labels = read_folder(args.bench / corpus / variant)
            bits = binarize(model, x.astype(np.float32))
            plain = trial_figures(calibrated(scorer, calibrator, bits, sec, i, j), labels)
            for size in (5, 20):
                pop = np.flatnonzero(every.id.isin(pops[size].id).to_numpy())
                spk = every.speaker.to_numpy()[pop]
                row = {"corpus": corpus, "variant": variant, "population": size, "none": plain}
                for shrinkage in SHRINKAGES:
                    adapted = PopulationAdaptation(shrinkage).fit(bits[pop]).adapt(scorer)
                    llr = calibrated(adapted, calibrator, bits, sec, i, j)
                    bounds = population_elub(adapted, calibrator, bits, sec, pop, spk, shipped)[0]
                    row[f"T={shrinkage:g}"] = trial_figures(np.clip(llr, *bounds), labels)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
