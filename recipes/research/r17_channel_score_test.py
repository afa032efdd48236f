"""What the channel check of `balr score test` warns on the population benchmark's trials.

For each corpus and channel variant of runs/population_robustness/<corpus>/<variant>, its
`all.csv`, `trials.tsv` and `vectors/` are copied to a work folder, the `channel_profiles.tsv`
that `balr extract` would write is made from each item's audio with the extraction's own
writer (`balr.data.channel_profiles.ChannelProfileLog`; the embeddings are not extracted
again), and `balr score test` runs with the shipped defaults and `--same-recording-by-id`,
once with the speaker labels (the dataset's bound check can then warn too) and once with the
speaker column emptied (unlabelled case data: only the calibration conditions and the channel
check can warn). Printed per run: the scored trials, the share warned (out of the
calibration conditions for any reason), the share warned by the channel check, the share
warned for another reason (calibration conditions, the dataset's bound check), and the
channel check's log line (recordings checked and flagged, profiles missing or stale). About
15 minutes on 2 CPU cores:

    PYTHONPATH=src python recipes/research/r17_channel_score_test.py [--runs RUNS] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from balr.audio import load_audio
from balr.conditions.channel import channel_profile
from balr.data import AudioDataset
from balr.data.channel_profiles import CHANNEL_FILE, ChannelProfileLog

CORPORA = ("librispeech", "speechocean", "commonvoice")
VARIANTS = ("orig", "telephone", "hall")
CHANNEL = "channel unlike the calibration recordings'"


def prepare(source: Path, work: Path) -> Path:
    """The copied folder with its channel_profiles.tsv (made once) and the unlabelled CSV."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("all.csv", "trials.tsv"):
        shutil.copy(source / name, work / name)
    if not (work / "vectors").is_dir():
        shutil.copytree(source / "vectors", work / "vectors")
    if not (work / "vectors" / CHANNEL_FILE).is_file():
        dataset = AudioDataset.from_path(work / "all.csv", output_dir=work / "vectors")
        log = ChannelProfileLog(work / "vectors" / CHANNEL_FILE)
        for item in dataset.items:
            profile = channel_profile(load_audio(item.audio, 16000))
            log.add(item.id, str(Path(item.audio).absolute()), profile)
        log.close()
    items = pd.read_csv(work / "all.csv", dtype=str)
    items.assign(speaker="").to_csv(work / "unlabelled.csv", index=False)
    return work


def score_test(work: Path, csv: str, out: str) -> tuple[pd.DataFrame, str]:
    """Run `balr score test` (shipped defaults); its scores.csv and the channel check's log
    line (metrics.json, which keeps the same counts, is written only for labelled trials)."""
    command = [
        sys.executable, "-m", "balr.cli.main", "score", "test", str(work / csv),
        str(work / "trials.tsv"), "--vectors-dir", str(work / "vectors"),
        "--save-dir", str(work / out), "--same-recording-by-id", "--exist-ok",
    ]  # fmt: skip
    run = subprocess.run(command, check=True, capture_output=True, text=True, env={**os.environ})
    scores = pd.read_csv(work / out / "scores.csv", sep="\t", dtype=str, keep_default_na=False)
    found = [line for line in run.stderr.splitlines() if "channel check" in line]
    return scores, found[-1].split(": ", 1)[-1] if found else "no channel check logged"


def shares(scores: pd.DataFrame) -> tuple[int, float, float, float]:
    """`(scored trials, % warned, % warned by the channel, % warned for another reason)`."""
    scored = scores[pd.to_numeric(scores.scores, errors="coerce").notna()]
    reasons = scored.conditions_reason
    warned = scored.in_conditions.str.lower() == "false"
    channel = reasons.str.contains(CHANNEL, regex=False) & warned
    others = warned & reasons.map(lambda text: any(
        part and CHANNEL not in part and "a note, not a warning" not in part
        for part in text.split("; ")))  # fmt: skip
    return len(scored), 100 * warned.mean(), 100 * channel.mean(), 100 * others.mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("/work/main/runs/population_robustness"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/r17_channel_score_test"))
    args = parser.parse_args()
    print("corpus variant labels trials warned% by_channel% other_reason% | channel check log")
    for corpus in CORPORA:
        for variant in VARIANTS:
            work = prepare(args.runs / corpus / variant, args.work / corpus / variant)
            for labels, csv in (("labelled", "all.csv"), ("unlabelled", "unlabelled.csv")):
                scores, logged = score_test(work, csv, f"score_{labels}")
                n, warned, channel, others = shares(scores)
                row = f"{corpus} {variant} {labels} {n} {warned:.1f} {channel:.1f} {others:.1f}"
                print(f"{row} | {logged}", flush=True)


if __name__ == "__main__":
    main()
