"""Build the shipped channel reference (`balr.conditions.channel.ChannelReference`) from the
calibration (`cal`) recordings of the shipped build, and measure what it flags.

The recordings are those of `build_default_models.py` (its seeded speaker split, SPLITS,
seed 0, as `refit_shipped_conditions.py` rebuilds them: LibriSpeech 3-s segments of
../shared/data/librispeech-train-clean-100-1utt, speechocean762 and Common Voice), each
scored against the references of other speakers for the per-corpus thresholds. Measured:
the share flagged of a seeded sample of each corpus's `test`-part recordings (speakers the
build never used) and of the population benchmark's channel variants
(runs/population_robustness/<corpus>/<telephone|hall>/audio, read only) and their
originals. Writes src/balr/resources/defaults/channel_reference.safetensors, the manifest,
and prints the figures (kept in recipes/build_channel_reference.log). A few minutes on CPU:

    PYTHONPATH=src python recipes/build_channel_reference.py [--runs RUNS_FOLDER]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from default_models import segment_bounds, split_speakers  # noqa: E402
from refit_shipped_conditions import SHARED, SKIPPED, SPLITS, corpus_items  # noqa: E402

from balr import defaults  # noqa: E402
from balr.audio import audio_info, load_audio  # noqa: E402
from balr.conditions.channel import ChannelReference, channel_profile  # noqa: E402

TARGET = defaults.RESOURCE_DIR / "channel_reference.safetensors"
#: at most this many reference profiles are kept (file size: 192 bytes each)
MAX_REFERENCES = 1800
#: recordings measured per corpus and test set
SAMPLE = 300
FOLDERS = {"speechocean": "speechocean762", "commonvoice": "commonvoice-6.1-sample"}


def parts(items: pd.DataFrame, part: str) -> pd.DataFrame:
    """The items of the speakers of `part` in each corpus's seeded split."""
    keep = pd.Series(False, index=items.index)
    for corpus, sizes in SPLITS.items():
        mine = items.corpus == corpus
        speakers = split_speakers(items.loc[mine, "speaker"], sizes, seed=0)[part]
        keep |= mine & items.speaker.isin(speakers)
    return items[keep & ~items.id.isin(SKIPPED)].reset_index(drop=True)


def item_wave(row, audio: dict[str, dict[str, str]]) -> np.ndarray:
    """The 16 kHz audio of one build item (a LibriSpeech item: its 3-s segment)."""
    if row.corpus != "librispeech":
        return load_audio(SHARED / FOLDERS[row.corpus] / audio[row.corpus][row.id], 16000)
    stem, number = row.id.split("/")[1].rsplit("-", 1)
    path = SHARED / "librispeech-train-clean-100-1utt" / f"{stem}.flac"
    frames, rate = audio_info(path)
    start, end = segment_bounds(frames / rate, 3.0)[int(number)]
    return load_audio(path, 16000, offset_s=start, duration_s=end - start)


def item_profiles(items: pd.DataFrame) -> np.ndarray:
    audio = {
        corpus: pd.read_csv(SHARED / folder / "metadata.csv", dtype=str).set_index("id")["audio"]
        for corpus, folder in FOLDERS.items()
    }
    return np.stack([channel_profile(item_wave(row, audio)) for row in items.itertuples()])


def sample(frame: pd.DataFrame, n: int = SAMPLE) -> pd.DataFrame:
    return frame.sample(min(n, len(frame)), random_state=0) if len(frame) > n else frame


def flagged_share(reference: ChannelReference, paths: list[Path]) -> float:
    profiles = np.stack([channel_profile(load_audio(p, 16000)) for p in paths])
    return float((reference.distances(profiles) > reference.threshold_).mean())


def measure(reference: ChannelReference, runs: Path) -> None:
    """Print the shares flagged of the test parts and the benchmark's channel variants."""
    test = parts(corpus_items(), "test")
    for corpus, group in test.groupby("corpus"):
        group = sample(group)
        flagged = reference.distances(item_profiles(group)) > reference.threshold_
        print(f"  {corpus} test part: {flagged.mean():.1%} of {len(group)} flagged")
    for corpus in ("librispeech", "speechocean", "commonvoice"):
        base = runs / "population_robustness" / corpus
        if not base.is_dir():
            print(f"  {corpus}: no benchmark audio under {base}")
            continue
        originals = sample(pd.read_csv(base / "orig" / "all.csv", dtype=str))
        paths = [Path(p) for p in originals.audio]
        print(f"  {corpus} benchmark originals: {flagged_share(reference, paths):.1%} "
              f"of {len(paths)} flagged")  # fmt: skip
        for variant in ("telephone", "hall"):
            files = sorted((base / variant / "audio").glob("*.wav"))
            files = [
                files[i] for i in sorted(np.random.default_rng(0).permutation(len(files))[:SAMPLE])
            ]
            print(f"  {corpus} {variant}: {flagged_share(reference, files):.1%} "
                  f"of {len(files)} flagged")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=Path, default=Path(__file__).resolve().parents[1] / "runs")
    parser.add_argument("--percentile", type=float, default=98.0)
    args = parser.parse_args()
    began = time.time()
    cal = parts(corpus_items(), "cal")
    if len(cal) > MAX_REFERENCES:
        cal = cal.sample(MAX_REFERENCES, random_state=0).reset_index(drop=True)
    print(f"{len(cal)} calibration recordings: {cal.corpus.value_counts().to_dict()}")
    reference = ChannelReference(percentile=args.percentile).fit(
        item_profiles(cal), cal.corpus.tolist(), cal.speaker.tolist()
    )
    thresholds = {k: round(v, 3) for k, v in reference.group_thresholds_.items()}
    print(f"P{args.percentile:g} per corpus {thresholds}; threshold {reference.threshold_:.3f}")
    measure(reference, args.runs)
    reference.save(TARGET)
    print(f"wrote {TARGET} ({TARGET.stat().st_size / 1024:.0f} KB), {defaults.write_manifest()}")
    print(f"done in {time.time() - began:.0f} s")


if __name__ == "__main__":
    main()
