"""r19: the shipped BA-LR chain rebuilt on embeddings adapted per corpus (issue 18.2: "rebuild
the shipped encoder, scorers and calibration on embeddings adapted per corpus to that
corpus's own population part, so that one calibration holds across conditions").

Two chains are built in memory from the same GE2E embeddings of `recipes/default_models.sh`
(its work dir, `--base`, with the shipped recipe's BAE options, seed and splits):
- `plain`: the shipped recipe as is (BAE on `enc`, beta scorer on `ref`, qmf on the `cal`
  trials, corpora weighing equally): the like-for-like baseline of this in-memory rebuild;
- `adapted`: every fitted corpus's embeddings moved from that corpus's own mean (its
  non-test recordings, the corpus's population) to the mean of the three corpus means,
  `x - mean(corpus) + mean(means)`, before the same BAE, scorer and calibration are fitted.
The current method is `plain+typicality` (the beta scorer's typicality refitted on the
population, shrunk toward the reference one; here always, as the bound test does on every
channel); `adapted+typicality` stacks both. At test time the adapted chain moves a case's
embeddings from its population's mean to the same centre; without a population it gets the
embeddings as they are.

Both are scored on the held-out trials of `benchmarks/population_robustness.py` (its cached
folders, `--bench`): every corpus, channel variant and population (none, 5, 20 speakers),
with the metrics of its table. The current method (shipped chain, typicality adaptation
behind the bound test) is that benchmark's JSON.

    PYTHONPATH=src python recipes/research/r19_adapted_rebuild.py [--base runs/r19_base]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_default_models import BAE_EPOCHS, BAE_OVERRIDES, FITTED  # noqa: E402
from rcommon import binarize, fit_scorer, lr_matrix  # noqa: E402

from balr.binary_attributes.config import train_config  # noqa: E402
from balr.binary_attributes.trainer import BAETrainer  # noqa: E402
from balr.calibration import make_calibrator  # noqa: E402
from balr.data.labelled import LabelledEmbeddings  # noqa: E402
from balr.data.speech import read_speech_durations  # noqa: E402
from balr.data.vectors import VectorStore, read_vector  # noqa: E402
from balr.evaluation.metrics import cllr, eer, min_cllr  # noqa: E402
from balr.population import PopulationAdaptation  # noqa: E402

LN100 = np.log(100)
CORPORA = ("librispeech", "speechocean", "commonvoice")
VARIANTS = ("orig", "telephone", "hall")


def train_encoder(x: np.ndarray, speakers: np.ndarray, workdir: Path):
    """The shipped recipe's BAE (MSE, 30 epochs, seed 0), trained in memory."""
    import tempfile

    cfg = train_config([*BAE_OVERRIDES, f"trainer.epochs={BAE_EPOCHS}"])
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        trainer = BAETrainer(cfg, tmp, device="cpu")
        trainer.fit(LabelledEmbeddings(np.asarray(x, np.float32), np.asarray(speakers)))
    return trainer.model.eval()


def pairs_in_corpus(frame: pd.DataFrame):
    """`(i, j, label, group)` of every within-corpus pair of `frame`'s rows."""
    out = []
    for corpus, rows in frame.groupby("corpus", sort=False):
        index = rows.index.to_numpy()
        a, b = np.triu_indices(len(index), k=1)
        spk = rows.speaker.to_numpy()
        out.append((index[a], index[b], (spk[a] == spk[b]).astype(np.int64),
                    np.full(len(a), corpus)))  # fmt: skip
    return tuple(np.concatenate(x) for x in zip(*out, strict=True))


def build_chain(items: pd.DataFrame, emb: np.ndarray, seconds: np.ndarray, workdir: Path):
    """BAE on `enc`, beta scorer on `ref`, qmf on the `cal` trials (corpora balanced)."""
    enc = (items.part == "enc").to_numpy()
    model = train_encoder(emb[enc], items.speaker.to_numpy()[enc], workdir)
    bits = binarize(model, emb.astype(np.float32))
    ref = (items.part == "ref").to_numpy()
    scorer = fit_scorer("beta", bits[ref], items.speaker.to_numpy()[ref])
    cal = items[items.part == "cal"].reset_index(drop=True)
    cal_index = np.flatnonzero((items.part == "cal").to_numpy())
    i, j, labels, groups = pairs_in_corpus(cal)
    matrix = lr_matrix(scorer, bits[cal_index])
    durations = np.stack([seconds[cal_index][i], seconds[cal_index][j]], axis=1)
    calibrator = make_calibrator("qmf").fit(matrix[i, j], labels, durations, groups)
    return model, scorer, calibrator


def sidecars(vectors: Path) -> dict[str, Path]:
    """Embedding sidecars under a `--save-dir` folder, by their name (the audio's stem or
    the item id's last part)."""
    return {p.name[: -len("_emb.txt")]: p for p in vectors.rglob("*_emb.txt")}


def read_folder(folder: Path):
    """The benchmark folder's items, embeddings, speech seconds and labelled trials."""
    data = pd.read_csv(folder / "all.csv", dtype=str)
    pops = {k: pd.read_csv(folder / f"pop{k}.csv", dtype=str) for k in (5, 20)}
    trials = pd.read_csv(folder / "trials.tsv", sep="\t", dtype=str)
    every = pd.concat([data, *pops.values()]).drop_duplicates("id").reset_index(drop=True)
    found = sidecars(folder / "vectors")
    paths = [found.get(Path(a).stem, Path("/missing")) for a in every.audio]
    kept = np.array([p.is_file() for p in paths])  # `balr extract` skips too little speech
    every = every[kept].reset_index(drop=True)
    emb = np.stack([read_vector(p) for p, k in zip(paths, kept, strict=True) if k])
    trials = trials[trials.enrollment.isin(every.id) & trials.test.isin(every.id)]
    speech = read_speech_durations(folder / "vectors" / "speech_durations.tsv")
    seconds = every.id.map(speech).to_numpy(np.float64)
    pos = {item: k for k, item in enumerate(every.id)}
    i = trials.enrollment.map(pos).to_numpy()
    j = trials.test.map(pos).to_numpy()
    spk = every.speaker.to_numpy()
    return every, emb, seconds, pops, i, j, (spk[i] == spk[j]).astype(np.int64)


def trial_figures(llr: np.ndarray, labels: np.ndarray) -> dict:
    tar, non = llr[labels == 1], llr[labels == 0]
    return {
        "eer": round(100 * eer(llr, labels)[0], 2),
        "cllr": round(cllr(llr, labels), 3),
        "min_cllr": round(min_cllr(llr, labels), 3),
        "non_gt100": round(100 * float(np.mean(non > LN100)), 2),
        "tar_lt001": round(100 * float(np.mean(tar < -LN100)), 2),
    }


def score_folder(chain, every, emb, seconds, i, j, labels, typical_of=None) -> dict:
    """The chain's figures on the trials; `typical_of` (population rows): the beta scorer's
    typicality refitted on them first (`PopulationAdaptation`, the shipped shrinkage)."""
    model, scorer, calibrator = chain
    bits = binarize(model, emb.astype(np.float32))
    if typical_of is not None:
        scorer = PopulationAdaptation().fit(bits[typical_of]).adapt(scorer)
    raw = lr_matrix(scorer, bits)[i, j]
    llr = calibrator.transform(raw, np.stack([seconds[i], seconds[j]], axis=1))
    return trial_figures(llr, labels)


def load_base(base: Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The fitted corpora's items with an embedding in the recipe's work dir `base`, their
    GE2E embeddings and net speech seconds."""
    items = pd.read_csv(base / "items.csv", dtype=str)
    store = VectorStore.open(base / "embeddings")
    speech = read_speech_durations(base / ".balr" / "speech_durations.tsv")
    items = items[items.id.isin(store.index) & items.corpus.isin(FITTED)].reset_index(drop=True)
    emb = store.gather(items.id.tolist()).astype(np.float64)
    return items, emb, items.id.map(speech).to_numpy(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, default=Path("runs/r19_base"))
    parser.add_argument("--bench", type=Path, default=Path("runs/population_robustness"))
    parser.add_argument("--out", type=Path, default=Path("runs/r19_adapted_rebuild.json"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    items, emb, seconds = load_base(args.base)
    fitted = (items.part != "test").to_numpy()
    means = {c: emb[fitted & (items.corpus == c).to_numpy()].mean(axis=0) for c in FITTED}
    centre = np.mean(list(means.values()), axis=0)
    moved = emb - np.stack([means[c] for c in items.corpus]) + centre
    print(
        f"{len(items)} items; corpus means' distance to the centre: "
        + ", ".join(f"{c} {np.linalg.norm(m - centre):.3f}" for c, m in means.items())
    )
    chains = {}
    for name, vectors in (("plain", emb), ("adapted", moved)):
        chains[name] = build_chain(items, vectors, seconds, args.base)
        cal = chains[name][2]
        print(
            f"{name} chain built ({time.perf_counter() - t0:.0f} s): ELUB log10 "
            f"[{cal.lower_bound_ / np.log(10):.2f}, {cal.upper_bound_ / np.log(10):.2f}]"
        )
    results = []
    for corpus in CORPORA:
        for variant in VARIANTS:
            every, x, sec, pops, i, j, labels = read_folder(args.bench / corpus / variant)
            for size in (0, 5, 20):
                rows = {"corpus": corpus, "variant": variant, "population": size}
                rows["plain"] = score_folder(chains["plain"], every, x, sec, i, j, labels)
                if size:
                    pop = every.id.isin(pops[size].id).to_numpy()
                    shifted = x - x[pop].mean(axis=0) + centre
                else:
                    shifted = x
                rows["adapted"] = score_folder(chains["adapted"], every, shifted, sec, i, j,
                                               labels)  # fmt: skip
                if size:  # both with the typicality refit too (--population-adapt always)
                    rows["plain+typicality"] = score_folder(
                        chains["plain"], every, x, sec, i, j, labels, typical_of=pop
                    )
                    rows["adapted+typicality"] = score_folder(
                        chains["adapted"], every, shifted, sec, i, j, labels, typical_of=pop
                    )
                results.append(rows)
                print(json.dumps(rows), flush=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
