"""Refit only the similarity thresholds of the shipped calibrations' conditions descriptions,
balanced over corpora (issue 18.4), without touching their calibrators (the LRs) or their
reference vectors. CPU seconds, no extraction: the reference vectors are shipped.

The description's rows are the calibration recordings of `build_default_models.py` in the
order `score calibrate` stacked them (the `cal` parts' within-corpus trials, enrollment ids
first); their speakers and corpora come from the same seeded speaker split of
`../shared/data` (LibriSpeech segment counts from the files' lengths; the 6 items that
`balr extract` skipped for too little speech, recipes/logs/default_models.log, left out).
The reconstruction is checked first: the former pooled rule must give back the shipped
threshold (exactly for the BA bits). Then each description gets the per-corpus thresholds
(`ConditionsDescription.similarity_threshold`), its speech range unchanged (the per-recording
durations are not shipped), and the manifest is rewritten.

    PYTHONPATH=src python recipes/refit_shipped_conditions.py [--check-only]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from default_models import all_pairs_trials, segment_bounds, split_speakers  # noqa: E402

from balr import defaults  # noqa: E402
from balr.calibration import CalibrationBundle  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SPLITS = {  # as build_default_models.SPLITS (seed 0)
    "librispeech": {"enc": 100, "ref": 50, "cal": 50, "test": -1},
    "speechocean": {"enc": 100, "ref": 50, "cal": 50, "test": -1},
    "commonvoice": {"enc": 300, "ref": 150, "cal": 150, "test": -1},
}
#: items `balr extract` skipped in the shipped build (too little speech; its log)
SKIPPED = (
    "4014/4014-186175-0000-01", "common_voice_eo_22367980", "common_voice_ja_22376222",
    "common_voice_ja_22376291", "common_voice_kab_20752093", "common_voice_ja_22324854",
)  # fmt: skip


def corpus_items() -> pd.DataFrame:
    """`id, speaker, corpus` of the three fitted corpora, in the build's item order."""
    rows = []
    for path in sorted((SHARED / "librispeech-train-clean-100-1utt").glob("*.flac")):
        info = sf.info(str(path))
        count = len(segment_bounds(info.frames / info.samplerate, 3.0))
        speaker = path.stem.split("-")[0]
        rows += [(f"{speaker}/{path.stem}-{k:02d}", speaker, "librispeech") for k in range(count)]
    frames = [pd.DataFrame(rows, columns=["id", "speaker", "corpus"])]
    for corpus, folder in (("speechocean", "speechocean762"),
                           ("commonvoice", "commonvoice-6.1-sample")):  # fmt: skip
        meta = pd.read_csv(SHARED / folder / "metadata.csv", dtype=str)
        frames.append(pd.DataFrame({"id": meta.id, "speaker": meta.speaker, "corpus": corpus}))
    return pd.concat(frames, ignore_index=True)


def calibration_rows() -> pd.DataFrame:
    """`id, speaker, corpus` of the description's rows, in their order."""
    items = corpus_items()
    cal = pd.Series(False, index=items.index)
    for corpus, sizes in SPLITS.items():
        mine = items.corpus == corpus
        speakers = split_speakers(items.loc[mine, "speaker"], sizes, seed=0)["cal"]
        cal |= mine & items.speaker.isin(speakers)
    items = items[cal & ~items.id.isin(SKIPPED)]
    trials = pd.concat([all_pairs_trials(g) for _, g in items.groupby("corpus", sort=False)])
    order = list(dict.fromkeys([*trials.enrollment, *trials.test]))
    return items.set_index("id").loc[order].reset_index()


def refit(path: Path, rows: pd.DataFrame, check_only: bool) -> None:
    bundle = CalibrationBundle.load(path)
    description = bundle.conditions
    references = description.reference_vectors_.astype(np.float64)
    # the fit compared the recordings' own vectors: bits are exact, embeddings float16 copies
    queries = references > 0 if description.vector_kind_ == "ba" else references
    owners = np.unique(rows.speaker.to_numpy(str), return_inverse=True)[1]
    unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    cosines = unit @ references.T  # the former rule: float16 rows, no self-skip
    cosines[owners[:, None] == owners[None, :]] = -np.inf
    former = np.sort(cosines, axis=1)[:, -description.neighbours :].mean(axis=1)
    pooled = float(np.percentile(former, description.similarity_percentile))
    shipped = description.similarity_threshold_
    tolerance = 1e-12 if description.vector_kind_ == "ba" else 1e-3
    print(f"{path.name}: former pooled rule {pooled:.6f}, shipped {shipped:.6f}")
    if abs(pooled - shipped) > tolerance:
        raise SystemExit(f"{path}: the reconstructed rows do not give the shipped threshold")
    own = description.similarity(queries.astype(np.float64), owners=owners)
    threshold, per_corpus = description.similarity_threshold(own, rows.corpus.tolist())
    print(f"  balanced: {threshold:.6f} (lowest of {per_corpus})")
    for corpus in per_corpus:
        mine = (rows.corpus == corpus).to_numpy()
        print(f"  {corpus}: below pooled {(own[mine] < shipped).mean():.1%}, "
              f"below balanced {(own[mine] < threshold).mean():.1%}")  # fmt: skip
    if check_only:
        return
    before = json.loads(path.read_text())["calibrator"]
    description.similarity_threshold_, description.group_thresholds_ = threshold, per_corpus
    CalibrationBundle(bundle.calibrator, description).save(path)
    assert json.loads(path.read_text())["calibrator"] == before  # the LRs are unchanged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check-only", action="store_true", help="Print, write nothing.")
    args = parser.parse_args()
    rows = calibration_rows()
    print(f"{len(rows)} calibration recordings: {rows.corpus.value_counts().to_dict()}")
    for path in (defaults.CALIBRATION, defaults.COSINE_CALIBRATION):
        refit(Path(path), rows, args.check_only)
    if not args.check_only:
        print(f"wrote {defaults.write_manifest()}")


if __name__ == "__main__":
    main()
