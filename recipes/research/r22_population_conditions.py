"""r22: with a relevant population, whose conditions does the warning check? (issue 18.4)

With a labelled population that tested the calibration (`balr.population_decision`), the
benchmark's channel trials are still warned on 4-62 % (`docs/population.md`): the
calibration-conditions check measures how unlike the *calibration* recordings a trial's
recordings are, which the population has just answered for its own conditions. Here the
population itself is the description of the conditions:

- `sim`: a `ConditionsDescription` fitted on the population's BA vectors (kNN similarity to
  its recordings of other speakers, threshold its own 2nd percentile);
- `chan`: a `ChannelReference` fitted on the population's channel profiles (kNN distance,
  threshold its own 98th percentile);
- `speech`: a side's net speech below the population's shortest recording.

Columns: `CLI warned` is the share the `balr score test` run of the cache warned (its
reasons: calibration similarity / speech / the dataset's bound), then per signal or rule the
share of trials it flags (the dataset's own bound check kept) and `mis A/B`: different-speaker
LR > 100 / same-speaker LR < 1/100 among the trials it leaves un-warned. `chanS98`: the
population's channel, standardised as the shipped reference (`chan98`: by the population's
own spread), threshold its own 98th percentile (`100`: its largest); `cal`: the shipped
calibration's channel reference; `speech_both`: below the population's shortest and the
calibration's range; `sim2` / `sim0`: BA-vector similarity to the population (its 2nd
percentile / its lowest). `balr` applies `chanS98&cal+speech_both`, with the calibration's
similarity check added to `cal` (`balr.conditions.population`).

Measured on `benchmarks/population_robustness.py`'s cache, per corpus and variant:
- matched: the population of the same variant (pop5 / pop20), the trials of that variant,
  scored with it (`scores_popK`): warned shares, and misleading LRs among the un-warned;
- mismatched: the population of another variant of the same corpus, the trials of this one
  (scored without a population, `scores_pop0`: a population that respects the bound leaves
  the LRs as without one, up to an offset): the share the population check flags.

    PYTHONPATH=src python recipes/research/r22_population_conditions.py [--work DIR]
        [--ratios | --speaker-bound]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from balr import defaults
from balr.conditions import ConditionsDescription
from balr.conditions.channel import ChannelReference
from balr.data import AudioDataset
from balr.data.channel_profiles import read_channel_profiles
from balr.data.speech import load_speech_durations
from balr.data.vectors import counts_to_bits

logging.getLogger("balr").setLevel(logging.ERROR)
CORPORA = ("librispeech", "speechocean", "commonvoice")
VARIANTS = ("orig", "telephone", "hall")


def read_folder(folder: Path) -> dict:
    items = pd.read_csv(folder / "all.csv", dtype=str)
    dataset = AudioDataset.from_path(folder / "all.csv", output_dir=folder / "vectors")
    present, counts = dataset.stack_vectors("ba", list(range(len(dataset))))
    items = items.iloc[present].reset_index(drop=True)  # an item too short has no vector
    profiles = read_channel_profiles(folder / "vectors") or {}
    durations = load_speech_durations(None, folder / "vectors") or {}
    ids = items["id"].tolist()
    known = set(ids)
    return {
        "ids": ids,
        "row": {i: r for r, i in enumerate(ids)},
        "speaker": items["speaker"].to_numpy(),
        "bits": counts_to_bits(counts),
        "profile": np.stack(
            [profiles[i][1] if i in profiles else np.full(96, np.nan) for i in ids]
        ).astype(np.float64),  # NaN: no profile (not flagged)
        "speech": np.array([durations.get(i, np.nan) for i in ids]),
        "pops": {
            k: [i for i in pd.read_csv(folder / f"pop{k}.csv", dtype=str)["id"] if i in known]
            for k in (5, 20)
            if (folder / f"pop{k}.csv").is_file()
        },
        "scores": {
            k: scored(folder / f"scores_pop{k}" / "scores.csv", known)
            for k in (0, 5, 20)
            if (folder / f"scores_pop{k}" / "scores.csv").is_file()
        },
    }


def scored(path: Path, known: set[str]) -> pd.DataFrame:
    """The trials of a scores.csv whose recordings both have vectors."""
    frame = pd.read_csv(path, sep="\t", dtype={"enrollment": str, "test": str})
    keep = frame["enrollment"].isin(known) & frame["test"].isin(known)
    return frame[keep].reset_index(drop=True)


SHIPPED = ChannelReference.load(defaults.CHANNEL_REFERENCE)
CALIBRATED_LOW = ConditionsDescription.load(defaults.CALIBRATION).speech_range_s_[0]


def population_flags(pop: dict, rows: np.ndarray, trial: dict) -> dict[str, np.ndarray]:
    """Per recording of `trial` (all of its items), whether it is unlike the population
    (`rows` of `pop`) by each signal."""
    speakers = pop["speaker"][rows]
    flags = {}
    for percentile in (2.0, 0.0):
        description = ConditionsDescription(similarity_percentile=percentile).fit(
            pop["bits"][rows], pop["speech"][rows], speakers, "ba"
        )
        similar = description.similarity(trial["bits"])
        flags[f"sim{percentile:g}"] = similar < description.similarity_threshold_
    for percentile in (98.0, 100.0):
        reference = ChannelReference(percentile=percentile).fit(
            pop["profile"][rows], ["pop"] * len(rows), speakers
        )
        flags[f"chan{percentile:g}"] = reference.distances(trial["profile"]) > reference.threshold_
        reference.shift_, reference.scale_ = SHIPPED.shift_, SHIPPED.scale_  # shipped scale
        own = reference.distances(pop["profile"][rows], speakers[:, None] == speakers[None, :])
        threshold = np.percentile(own, percentile)
        flags[f"chanS{percentile:g}"] = reference.distances(trial["profile"]) > threshold
    flags["cal"] = SHIPPED.distances(np.nan_to_num(trial["profile"])) > SHIPPED.threshold_
    flags["floor"] = np.nanmin(pop["speech"][rows])
    missing = np.isnan(trial["profile"]).any(axis=1)
    return {k: (v & ~missing if k != "floor" else v) for k, v in flags.items()}


def trial_flags(flags: dict, trial: dict, scores: pd.DataFrame) -> dict[str, np.ndarray]:
    e = scores["enrollment"].map(trial["row"]).to_numpy()
    t = scores["test"].map(trial["row"]).to_numpy()
    both = {"chanS98&cal": flags["chanS98"] & flags["cal"]}  # unlike both, per recording
    out = {name: flags[name][e] | flags[name][t] for name in flags if name != "floor"}
    out |= {name: flag[e] | flag[t] for name, flag in both.items()}
    shortest = np.minimum(trial["speech"][e], trial["speech"][t])
    out["speech"] = shortest < flags["floor"]
    out["speech_both"] = shortest < min(flags["floor"], CALIBRATED_LOW)
    out["chanS98+speech_both"] = out["chanS98"] | out["speech_both"]
    out["chanS98&cal+speech_both"] = out["chanS98&cal"] | out["speech_both"]
    out["chanS100+speech_both"] = out["chanS100"] | out["speech_both"]
    out["chan100+sim0+speech_both"] = out["chan100"] | out["sim0"] | out["speech_both"]
    out["chanS100+sim0+speech_both"] = out["chanS100"] | out["sim0"] | out["speech_both"]
    return out


def misleading(llr: np.ndarray, labels: np.ndarray, quiet: np.ndarray) -> str:
    """`mis NON/TAR`: % different-speaker LR > 100 / same-speaker LR < 1/100 of `quiet`."""
    non, tar = quiet & (labels == 0), quiet & (labels == 1)
    high = 100 * float(np.mean(llr[non] > np.log(100))) if non.any() else np.nan
    low = 100 * float(np.mean(llr[tar] < np.log(0.01))) if tar.any() else np.nan
    return f"mis {high:.2f}/{low:.2f}"


def reason_shares(scores: pd.DataFrame) -> str:
    reasons = scores["conditions_reason"].fillna("").astype(str)
    warned = ~scores["in_conditions"].astype(bool)
    kinds = {
        "similarity": reasons.str.contains("unlike the calibration population"),
        "speech": reasons.str.contains("speech [0-9.]+ s below", regex=True),
        "bound": reasons.str.contains("does not hold"),
    }
    return " ".join(f"{k} {100 * np.mean(v & warned):.1f}" for k, v in kinds.items())


def populations(work: Path, marker: str = "all.csv"):
    """Per corpus, its variants' folders (those holding `marker`) read, then per population
    of each: `(corpus, variant, size, its rows, that variant's data, every variant's)`."""
    for corpus in CORPORA:
        present = [v for v in VARIANTS if (work / corpus / v / marker).is_file()]
        folders = {v: read_folder(work / corpus / v) for v in present}
        for variant, data in folders.items():
            for size, pop_ids in data["pops"].items():
                rows = np.array([data["row"][i] for i in pop_ids])
                yield corpus, variant, size, rows, data, folders


def population_reference(data: dict, rows: np.ndarray) -> ChannelReference:
    """The channel reference of the population `rows`, standardised as the shipped one."""
    speakers = data["speaker"][rows]
    return ChannelReference().fit(data["profile"][rows], ["pop"] * len(rows), speakers, SHIPPED)


def trial_labels(scores: pd.DataFrame, data: dict) -> np.ndarray:
    """Per trial of `scores`, whether both recordings are of one speaker."""
    speaker = dict(zip(data["ids"], data["speaker"], strict=True))
    return (scores["enrollment"].map(speaker) == scores["test"].map(speaker)).to_numpy()


def speaker_bound(work: Path) -> None:
    """A threshold for few speakers: a speaker-level prediction bound, the mean plus
    t(0.98, n-1) x sd x sqrt(1 + 1/n) of the population speakers' own 98th-percentile
    distances, against the 98th percentile of all its recordings' (`t98`): the share of
    trial recordings (of other speakers) flagged, per trial variant."""
    from scipy import stats

    for corpus, variant, size, rows, data, folders in populations(work):
        spk = data["speaker"][rows]
        ref = population_reference(data, rows)
        own = ref.distances(data["profile"][rows], spk[:, None] == spk[None, :])
        q = np.array([np.percentile(own[spk == s], 98) for s in np.unique(spk)])
        t = stats.t.ppf(0.98, len(q) - 1)
        bound = q.mean() + t * q.std(ddof=1) * np.sqrt(1 + 1 / len(q))
        line = [f"{corpus:12s} {variant:9s} pop{size:<2d} t98 {ref.threshold_:5.2f} "
                f"bound {bound:5.2f}"]  # fmt: skip
        for other, trial in folders.items():
            profiles = trial["profile"][~np.isin(trial["speaker"], spk)]
            d = ref.distances(profiles[~np.isnan(profiles).any(1)])
            line.append(f"{other}: t98 {100 * np.mean(d > ref.threshold_):5.1f} % "
                        f"bound {100 * np.mean(d > bound):5.1f} %")  # fmt: skip
        print(" | ".join(line), flush=True)


def matched(corpus: str, variant: str, size: int, rows: np.ndarray, data: dict) -> None:
    """The population against the trials of its own variant, scored with it by the CLI."""
    scores = data["scores"].get(size)
    if scores is None:
        return
    labels, llr = trial_labels(scores, data), scores["scores"].to_numpy(float)
    now = ~scores["in_conditions"].astype(bool).to_numpy()
    bound = scores["conditions_reason"].fillna("").str.contains("does not hold").to_numpy()
    line = [
        f"{corpus:12s} {variant:9s} pop{size:<2d} matched:",
        f"CLI warned {100 * now.mean():5.1f} % ({reason_shares(scores)})",
        misleading(llr, labels, ~now),
    ]
    for name, flagged in trial_flags(population_flags(data, rows, data), data, scores).items():
        warned = flagged | bound  # the dataset's own bound check stays
        line.append(f"{name} {100 * warned.mean():5.1f} % ({misleading(llr, labels, ~warned)})")
    print(" | ".join(line), flush=True)


def mismatched(corpus: str, variant: str, size: int, rows, data: dict, other: str, trial) -> None:
    """The population against the trials of another variant (scored without a population)."""
    base = trial["scores"][0]
    labels, llr = trial_labels(base, trial), base["scores"].to_numpy(float)
    out = [
        f"{corpus:12s} pop {variant}{size} -> trials {other}:",
        misleading(llr, labels, np.ones(len(llr), bool)),
    ]
    for name, flagged in trial_flags(population_flags(data, rows, trial), trial, base).items():
        out.append(f"{name} {100 * flagged.mean():5.1f} % ({misleading(llr, labels, ~flagged)})")
    print(" | ".join(out), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/population_robustness"))
    parser.add_argument("--ratios", action="store_true", help="the distance ratios only")
    parser.add_argument("--speaker-bound", action="store_true", help="that threshold only")
    args = parser.parse_args()
    if args.ratios:
        distance_ratios(args.work)
        return
    if args.speaker_bound:
        speaker_bound(args.work)
        return
    marker = "scores_pop0/scores.csv"
    for corpus, variant, size, rows, data, folders in populations(args.work, marker):
        if size not in data["scores"]:
            continue
        matched(corpus, variant, size, rows, data)
        for other, trial in folders.items():
            if other != variant and 0 in trial["scores"]:
                mismatched(corpus, variant, size, rows, data, other, trial)


def distance_ratios(work: Path) -> None:
    """Per population and trial variant: the trial recordings' channel distances (shipped
    scale, own speaker left out) over the population's 98th-percentile threshold: the 50th,
    90th, 98th percentiles on its own variant (new speakers of its conditions) and the 2nd,
    10th, 50th on every other variant (other conditions)."""
    for corpus, variant, size, rows, data, folders in populations(work):
        speakers = data["speaker"][rows]
        reference = population_reference(data, rows)
        line = [f"{corpus:12s} pop {variant}{size:<2d} t98 {reference.threshold_:5.2f}"]
        for other, trial in folders.items():
            outside = ~np.isin(trial["speaker"], speakers)
            ratio = reference.distances(trial["profile"][outside]) / reference.threshold_
            q = (50, 90, 98) if other == variant else (2, 10, 50)
            values = "/".join(f"{v:.2f}" for v in np.percentile(ratio, q))
            line.append(f"{other} p{'/'.join(map(str, q))} {values}")
        print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main()
