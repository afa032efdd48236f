"""Held-out speakers in shared channels, with and without a relevant population (issue 18).

For each corpus's held-out `test` speakers (the seeded split of
`recipes/build_default_models.py`: no shipped model saw them) and each channel variant
(`orig`, and the shared channels of `channel_variants.py`: `telephone`, `hall`, `phone`),
a seeded pool of population speakers is drawn (20 where the corpus has 30 or more test
speakers, else 5); the trials are all pairs of the other speakers' recordings. The shipped
chain scores them with the `balr` CLI as a user would:

    balr extract all.csv; balr binarize all.csv
    balr score test all.csv trials.tsv [--population popK.csv]
    balr score test all.csv trials.tsv scorer=cosine scorer.vectors=emb [--population popK.csv]

in three settings: no population, the first 5 and all 20 pool speakers (same variant, so
the same conditions, speaker-disjoint from the trials). Per corpus, variant and setting:
EER and Cllr of the calibrated cosine of GE2E embeddings (the shipped cosine calibration;
with a population, embeddings moved from its mean to the calibration's where the population
breaks the bound: `balr.scoring.population_cosine`), EER of BA-LR, Cllr and minCllr of the
calibrated BA-LR LLRs, the shares of different-speaker LR > 100 and
same-speaker LR < 1/100 over all trials and over the un-warned ones, and the warning rate
(`in_conditions` false).

Variant audio, vectors (`--save-dir`: never beside a corpus's audio) and scores are cached
under `--work` (default
runs/population_robustness); a rerun reuses them. Cost on 2 CPU cores: about 1-2 min per
100 recordings and variant for extraction, seconds for the rest.

    python benchmarks/population_robustness.py [--corpora librispeech ...]
        [--variants orig telephone ...] [--work DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "recipes"))
from _common import write_results  # noqa: E402
from channel_variants import SR, apply_channel  # noqa: E402

from balr.audio import load_audio  # noqa: E402
from balr.evaluation.metrics import cllr, eer, min_cllr, misleading_shares  # noqa: E402

CORPORA = ("librispeech", "speechocean", "commonvoice")
VARIANTS = ("orig", "telephone", "hall")
SETTINGS = (0, 5, 20)  # population speakers
SEED = 0


def held_out_items(work: Path) -> pd.DataFrame:
    """`id, audio, speaker, corpus` of every held-out test item (cached in work/items.csv)."""
    cached = work / "items.csv"
    if cached.is_file():
        return pd.read_csv(cached, dtype=str)
    from build_default_models import assign_parts, corpus_items

    items = assign_parts(corpus_items(work, 3.0))
    items = items[items["part"] == "test"].copy()
    items["audio"] = [str((work / a).resolve()) if not Path(a).is_absolute() else a
                      for a in items["audio"]]  # fmt: skip
    cached.parent.mkdir(parents=True, exist_ok=True)
    items[["id", "audio", "speaker", "corpus"]].to_csv(cached, index=False)
    return items[["id", "audio", "speaker", "corpus"]]


def population_pool(speakers: list[str], seed: int = SEED) -> tuple[list[str], list[str]]:
    """`(population pool, trial speakers)`: 20 seeded speakers with 30+, else 5."""
    size = 20 if len(speakers) >= 30 else 5
    order = np.random.default_rng(seed).permutation(sorted(speakers))
    return list(order[:size]), sorted(order[size:])


def variant_audio(items: pd.DataFrame, variant: str, folder: Path) -> pd.DataFrame:
    """The items' audio through `variant` (written once as 16 kHz PCM16 wav in `folder`)."""
    if variant == "orig":
        return items
    rows = []
    for item in items.itertuples():
        target = folder / "audio" / f"{item.id.replace('/', '__')}.wav"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            wave = apply_channel(load_audio(item.audio, SR), variant, item.id)
            tmp = target.with_suffix(".part.wav")
            sf.write(str(tmp), wave, SR, subtype="PCM_16")
            tmp.replace(target)
        rows.append(item._replace(audio=str(target)))
    return pd.DataFrame(rows)[items.columns]


def balr(*args: str) -> None:
    """One `balr` command (this checkout's), output shown only when it fails."""
    command = [sys.executable, "-m", "balr.cli.main", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"balr {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}")


def prepare(items: pd.DataFrame, folder: Path, pool: list[str], trial_speakers: list[str]):
    """all.csv, trials.tsv, pop5.csv, pop20.csv in `folder`; vectors extracted."""
    folder.mkdir(parents=True, exist_ok=True)
    items[["id", "audio", "speaker"]].to_csv(folder / "all.csv", index=False)
    trial_items = items[items["speaker"].isin(trial_speakers)].reset_index(drop=True)
    i, j = np.triu_indices(len(trial_items), k=1)
    ids = trial_items["id"].to_numpy()
    pd.DataFrame({"enrollment": ids[i], "test": ids[j]}).to_csv(
        folder / "trials.tsv", sep="\t", index=False
    )
    for size in SETTINGS[1:]:
        if size <= len(pool):
            pop = items[items["speaker"].isin(pool[:size])]
            pop[["id", "audio", "speaker"]].to_csv(folder / f"pop{size}.csv", index=False)
    if not (folder / "extracted").is_file():
        vectors = ["--save-dir", folder / "vectors"]  # never beside the corpus's audio
        balr("extract", folder / "all.csv", *vectors, "embeddings.num_workers=0",
             "embeddings.threads=2")  # fmt: skip
        balr("binarize", folder / "all.csv", *vectors)
        (folder / "extracted").write_text("done\n")


def score(folder: Path, size: int) -> pd.DataFrame:
    """scores.csv of `balr score test` with the `size`-speaker population (0: none)."""
    out = folder / f"scores_pop{size}"
    if not (out / "scores.csv").is_file():
        population = ["--population", folder / f"pop{size}.csv"] if size else []
        balr("score", "test", folder / "all.csv", folder / "trials.tsv", "--save-dir", out,
             "--vectors-dir", folder / "vectors", "--exist-ok", "--same-recording-by-id",
             *population)  # fmt: skip
    return pd.read_csv(out / "scores.csv", sep="\t", dtype={"enrollment": str, "test": str})


def cosine_scores(folder: Path, trials: pd.DataFrame, size: int) -> np.ndarray:
    """The calibrated LLRs of the cosine of the trials' GE2E embeddings (the shipped cosine
    calibration), from `balr score test scorer=cosine scorer.vectors=emb` with the
    `size`-speaker population (0: none), aligned with `trials`."""
    out = folder / f"cosine_pop{size}"
    if not (out / "scores.csv").is_file():
        population = ["--population", folder / f"pop{size}.csv"] if size else []
        balr("score", "test", folder / "all.csv", folder / "trials.tsv", "--save-dir", out,
             "--vectors-dir", folder / "vectors", "--exist-ok", "--same-recording-by-id",
             "scorer=cosine", "scorer.vectors=emb", *population)  # fmt: skip
    frame = pd.read_csv(out / "scores.csv", sep="\t", dtype={"enrollment": str, "test": str})
    if not (
        frame[["enrollment", "test"]].to_numpy() == trials[["enrollment", "test"]].to_numpy()
    ).all():
        raise RuntimeError(f"{out}: trials differ from the BA-LR run's")
    return frame["scores"].to_numpy(np.float64)


def figures(scores: pd.DataFrame, labels: np.ndarray, cosine: np.ndarray) -> dict:
    """The benchmark's columns for one corpus, variant and setting (trials of a recording
    without a vector, unscored, are left out)."""
    llr = scores["scores"].to_numpy(np.float64)
    scored = np.isfinite(llr) & np.isfinite(cosine)
    scores, labels, cosine, llr = scores[scored], labels[scored], cosine[scored], llr[scored]
    warned = ~scores["in_conditions"].astype(bool).to_numpy()
    quiet = misleading_shares(llr[~warned], labels[~warned]) if (~warned).any() else {}
    return {
        "trials": len(llr),
        "eer_cosine": eer(cosine, labels)[0],
        "cllr_cosine": cllr(cosine, labels),
        "eer_balr": eer(llr, labels)[0],
        "cllr": cllr(llr, labels),
        "min_cllr": min_cllr(llr, labels),
        **misleading_shares(llr, labels),
        **{f"unwarned_{k}": v for k, v in quiet.items()},
        "warned": float(warned.mean()),
    }


def run_corpus(items: pd.DataFrame, corpus: str, variants, work: Path) -> dict:
    mine = items[items["corpus"] == corpus].reset_index(drop=True)
    pool, trial_speakers = population_pool(sorted(set(mine["speaker"])))
    print(f"{corpus}: {len(mine)} items, {len(trial_speakers)} trial speakers, "
          f"population pool {len(pool)}", flush=True)  # fmt: skip
    results = {}
    for variant in variants:
        started = time.perf_counter()
        folder = work / corpus / variant
        audio = variant_audio(mine, variant, folder)
        prepare(audio, folder, pool, trial_speakers)
        speaker = dict(zip(audio["id"], audio["speaker"], strict=True))
        for size in (s for s in SETTINGS if s <= len(pool)):
            scores = score(folder, size)
            labels = (scores["enrollment"].map(speaker) == scores["test"].map(speaker)).to_numpy(
                np.int64
            )
            cosine = cosine_scores(folder, scores, size)
            row = figures(scores, labels, cosine)
            results[f"{variant}/pop{size}"] = row
            print(format_row(corpus, variant, size, row), flush=True)
        print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    return results


HEADER = (
    "| corpus | variant | population | EER cos | Cllr cos | EER BA-LR | Cllr | minCllr | "
    "non LR>100 | tar LR<1/100 | un-warned non>100 | un-warned tar<1/100 | warned |"
)


def format_row(corpus: str, variant: str, size: int, row: dict) -> str:
    def pct(key: str) -> str:
        value = row.get(key, float("nan"))
        return f"{100 * value:.2f} %"

    return (
        f"| {corpus} | {variant} | {size or 'none'} | {pct('eer_cosine')} | "
        f"{row['cllr_cosine']:.3f} | {pct('eer_balr')} | "
        f"{row['cllr']:.3f} | {row['min_cllr']:.3f} | {pct('nontarget_lr_above_100')} | "
        f"{pct('target_lr_below_0.01')} | {pct('unwarned_nontarget_lr_above_100')} | "
        f"{pct('unwarned_target_lr_below_0.01')} | {pct('warned')} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpora", nargs="+", default=list(CORPORA))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "population_robustness")
    ap.add_argument("--out", default=None)
    options = ap.parse_args()
    options.work = options.work.resolve()  # the CSVs written there name absolute paths
    items = held_out_items(options.work)
    print(HEADER)
    results = {
        corpus: run_corpus(items, corpus, options.variants, options.work)
        for corpus in options.corpora
    }
    print(json.dumps({"settings": SETTINGS}))
    write_results("population_robustness", results, options.out)


if __name__ == "__main__":
    main()
