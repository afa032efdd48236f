"""Research (issue 18.4): the reworked conditions warning against the former one, with the
shipped models, on held-out speakers (the `test` parts of the shipped build's seeded split).

Sets: LibriSpeech test speakers' ~3 s segments (`LS`) and their whole utterances (`LS long`,
1.6-17 s, one per speaker: different-speaker trials only), speechocean762 and Common Voice
test speakers' clips (`SO`, `CV`), and `SO 4-cell`: SO trials whose sides are 4 clips of a
speaker (~10 s a side; same-speaker sides disjoint). Each set: all within-set pairs (cells:
every speaker's 3 disjoint 4-clip cells against each other's). `balr extract` + `binarize`
once (shipped GE2E + BAE), then `balr score test` (shipped beta + qmf calibration) with this
tree (new rule) and with the tree given by --former-src (former rule). Printed per set and
rule: trials, % warned (out of conditions), and among un-warned trials the % strongly
misleading (different-speaker LR > 100 or same-speaker LR < 1/100).

Usage: PYTHONPATH=src python recipes/research/r10_warning_rework.py --work DIR
       [--former-src /path/to/former/src]   (log: r10_warning_rework.log)
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from default_models import librispeech_recordings, segment_corpus, split_speakers  # noqa: E402
from refit_shipped_conditions import SHARED, SPLITS  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LN100 = math.log(100.0)


def test_speakers(corpus: str, speakers) -> set[str]:
    return set(split_speakers(speakers, SPLITS[corpus], seed=0)["test"])


def items(work: Path) -> pd.DataFrame:
    """`id, audio, speaker, set` of every held-out item."""
    ls = librispeech_recordings(SHARED / "librispeech-train-clean-100-1utt")
    keep = test_speakers("librispeech", [s for _, s in ls])
    ls = [(p, s) for p, s in ls if s in keep]
    segments = segment_corpus(ls, work / "segments", 3.0)
    frames = [
        pd.DataFrame({"id": segments.id, "audio": [str(work / "segments" / a) for a in
                      segments.audio], "speaker": segments.speaker, "set": "LS"}),
        pd.DataFrame({"id": [f"long/{p.stem}" for p, _ in ls], "audio": [str(p) for p, _ in ls],
                      "speaker": [s for _, s in ls], "set": "LS long"}),
    ]  # fmt: skip
    for name, folder, corpus in (("SO", "speechocean762", "speechocean"),
                                 ("CV", "commonvoice-6.1-sample", "commonvoice")):  # fmt: skip
        meta = pd.read_csv(SHARED / folder / "metadata.csv", dtype=str)
        meta = meta[meta.speaker.isin(test_speakers(corpus, meta.speaker))]
        audio = [str(SHARED / folder / a) for a in meta.audio]
        frames.append(pd.DataFrame({"id": meta.id, "audio": audio, "speaker": meta.speaker,
                                    "set": name}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def trials(frame: pd.DataFrame) -> pd.DataFrame:
    """All within-set pairs, plus the SO 4-clip cells."""
    rows = []
    for name, part in frame.groupby("set", sort=False):
        rows += [(a, b, name) for a, b in itertools.combinations(part.id, 2)]
    cells = []
    for speaker, part in frame[frame.set == "SO"].groupby("speaker"):
        ids = sorted(part.id)
        cells += [(speaker, ",".join(ids[k : k + 4])) for k in range(0, 12, 4)]
    rows += [(a, b, "SO 4-cell") for (_, a), (_, b) in itertools.combinations(cells, 2)]
    return pd.DataFrame(rows, columns=["enrollment", "test", "set"])


def balr(src: Path, *args) -> None:
    env = dict(os.environ, PYTHONPATH=str(src))
    command = [sys.executable, "-m", "balr.cli.main", *map(str, args)]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)


def summary(scores: pd.DataFrame, speaker_of: dict) -> pd.DataFrame:
    """Per set (scored trials only: one CV clip has too little speech for a vector)."""
    scores = scores[scores.scores.notna()].reset_index(drop=True)
    first = lambda cell: speaker_of[cell.split(",")[0]]  # noqa: E731
    target = scores.enrollment.map(first) == scores.test.map(first)
    misleading = np.where(target, scores.scores < -LN100, scores.scores > LN100)
    inside = scores.in_conditions.astype(str) == "True"
    rows = []
    for name, mine in scores.groupby("set", sort=False).groups.items():
        kept, bad = inside[mine].to_numpy(), misleading[mine]
        rows.append({"set": name, "trials": len(mine), "target": int(target[mine].sum()),
                     "warned %": 100 * (1 - kept.mean()), "misleading % all": 100 * bad.mean(),
                     "misleading % un-warned": 100 * bad[kept].mean()})  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--former-src", type=Path, default=None)
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    frame = items(work)
    frame[["id", "audio", "speaker"]].to_csv(work / "heldout.csv", index=False)
    pairs = trials(frame)
    pairs.to_csv(work / "trials.tsv", sep="\t", index=False)
    vectors = work / "vectors"
    if not (vectors / "speech_durations.tsv").is_file():
        # --force: vectors of this run only, not sidecars other runs left beside the audio
        balr(REPO / "src", "extract", work / "heldout.csv", "--save-dir", vectors, "--force")
        balr(REPO / "src", "binarize", work / "heldout.csv", "--save-dir", vectors, "--force")
    speaker_of = dict(zip(frame.id, frame.speaker, strict=True))
    rules = {"new": REPO / "src"} | ({"former": args.former_src} if args.former_src else {})
    for rule, src in rules.items():
        out = work / f"scores_{rule}"
        if not (out / "scores.csv").is_file():  # a rerun reads the scores already there
            balr(src, "score", "test", work / "heldout.csv", work / "trials.tsv",
                 "--vectors-dir", vectors, "--save-dir", out, "--exist-ok")  # fmt: skip
        scores = pd.read_csv(out / "scores.csv", sep="\t", keep_default_na=False,
                             dtype={"enrollment": str, "test": str})  # fmt: skip
        scores["scores"] = pd.to_numeric(scores.scores, errors="coerce")
        scores["set"] = pairs.set.to_numpy()
        print(f"## {rule} rule ({src})")
        print(summary(scores, speaker_of).to_string(index=False, float_format="%.2f"))


if __name__ == "__main__":
    main()
