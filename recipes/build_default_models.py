"""Rebuild the shipped default models from ../shared/data (called by default_models.sh).

Stages (each one library call, the one its `balr` command makes, printed as that command
before it runs): segment LibriSpeech and collect
the held-out VoxCeleb clips -> extract GE2E embeddings -> train the BAE -> float16 copy ->
binarize -> fit the beta and speech scorers on the reference speakers -> score the
calibration trials -> fit calibrators (beta, cosine of embeddings) -> score both held-out
test sets raw and calibrated -> write metrics.json and install the files in the package.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from balr import defaults
from balr.binary_attributes import trainer as bae_trainer
from balr.binary_attributes.binarize import binarize_path
from balr.binary_attributes.config import binarize_config
from balr.calibration import Calibrator
from balr.data import AudioDataset, load_trials
from balr.data.provenance import EmbeddingProvenance, read_provenance, write_provenance
from balr.default_models import (
    all_pairs_trials,
    bit_agreement,
    librispeech_recordings,
    read_json,
    reference_llrs,
    save_float16_encoder,
    segment_corpus,
    split_speakers,
    trial_metrics,
    write_metrics,
    write_table,
)
from balr.embeddings.extract import extract_dataset_embeddings
from balr.scoring.jobs import calibrate_scores_file, score_trials_file, train_scorer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
LIBRISPEECH = SHARED / "librispeech-train-clean-100-1utt"
VOXCELEB2 = SHARED / "voxceleb" / "voxceleb2"
VOXCELEB1 = SHARED / "voxceleb" / "voxceleb1"
#: the bundled README example (examples/audio): never used to build the defaults
EXAMPLE_SPEAKERS = ("id00906", "id01184", "id03184", "id07531")
SPLIT = {"train": 150, "calibration": 50, "test": -1}
BAE_VALIDATION_SPEAKERS = 20  # of the train speakers, held out from BAE fitting only
SEED = 0


def run_stage(command: str, job, *args, **kwargs):
    """Run one library job, printed first as the `balr` command that makes the same call."""
    print(f"$ balr {command}", flush=True)
    started = time.perf_counter()
    result = job(*args, **kwargs)
    summary = getattr(result, "summary", None)
    if summary is not None:
        print(f"  {summary()}", flush=True)
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)
    return result


def voxceleb_recordings() -> list[tuple[Path, str]]:
    """Held-out VoxCeleb clips: VoxCeleb2 speakers other than the example's, + VoxCeleb1."""
    vox2 = [
        (p, p.parent.name)
        for p in sorted(VOXCELEB2.glob("id*/*.wav"))
        if p.parent.name not in EXAMPLE_SPEAKERS
    ]
    vox1 = [(p, p.stem.split("+")[0]) for p in sorted(VOXCELEB1.glob("*.wav"))]
    return vox2 + vox1


def prepare_data(work: Path, segment_s: float) -> dict:
    """Segments, dataset CSVs and trial lists in `work`; returns their counts."""
    segments = segment_corpus(librispeech_recordings(LIBRISPEECH), work / "segments", segment_s)
    segments["audio"] = "segments/" + segments["audio"]
    # whole clips, one "segment" each (segment length above the longest clip)
    vox = segment_corpus(voxceleb_recordings(), work / "voxceleb", segment_s=1e6)
    vox["audio"] = "voxceleb/" + vox["audio"]
    groups = split_speakers(segments["speaker"], SPLIT, seed=SEED)
    val_speakers = set(groups["train"][-BAE_VALIDATION_SPEAKERS:])
    columns = ["id", "audio", "speaker"]
    write_table(pd.concat([segments, vox])[columns], work / "all.csv")
    counts: dict = {"segment_s": segment_s, "seed": SEED}
    for name, speakers in groups.items():
        part = segments[segments["speaker"].isin(speakers)]
        write_table(part[columns], work / f"{name}.csv")
        counts[name] = {"speakers": len(speakers), "segments": len(part)}
    train = segments[segments["speaker"].isin(groups["train"])]
    write_table(train[~train["speaker"].isin(val_speakers)][columns], work / "bae_fit.csv")
    write_table(train[train["speaker"].isin(val_speakers)][columns], work / "bae_val.csv")
    counts["bae_validation_speakers"] = BAE_VALIDATION_SPEAKERS
    write_table(vox[columns], work / "voxceleb.csv")
    counts["voxceleb"] = {"speakers": int(vox["speaker"].nunique()), "clips": len(vox)}
    for name in ("calibration", "test"):
        part = segments[segments["speaker"].isin(groups[name])]
        write_table(all_pairs_trials(part), work / f"{name}_trials.tsv", sep="\t")
    write_table(all_pairs_trials(vox), work / "voxceleb_trials.tsv", sep="\t")
    counts["segment_seconds"] = {
        "min": float(segments["duration_s"].min()),
        "mean": round(float(segments["duration_s"].mean()), 3),
        "max": float(segments["duration_s"].max()),
        "total_minutes": round(float(segments["duration_s"].sum()) / 60, 1),
    }
    counts["speaker_groups"] = groups
    return counts


def record_embedding_model(work: Path) -> None:
    """Make sure `work/embedding_model.json` says GE2E, so the trained encoder records it:
    `extract` leaves a work dir unrecorded when it holds embeddings of a run made before
    balr recorded the model; every embedding of this recipe is made by the default GE2E."""
    if read_provenance(work) is None:
        write_provenance(work, EmbeddingProvenance(defaults.EMBEDDING_MODEL, 256))
        print(f"  recorded {defaults.EMBEDDING_MODEL} for the embeddings of {work}", flush=True)


def train_encoder(work: Path, epochs: int) -> dict:
    """Train the BAE (d=256, m=512), then keep a float16 copy of its best weights."""
    overrides = [
        f"trainer.epochs={epochs}", "trainer.progress=false", "data.N_classes_per_batch=32",
        "data.M_samples_per_class=4", f"trainer.seed={SEED}", "trainer.log_period=0",
        # the losses the shipped encoder was trained with (balr 0.1's defaults: one triplet
        # margin of 0.3, sparsity averaged over the 512 attributes), validated every epoch
        "trainer.losses=[mse, triplet, sparsity]", "trainer.losses.triplet.loss_margin=0.3",
        "trainer.losses.sparsity.weight=0.001953125", "trainer.val_period=1",
        "trainer.ste_gradient=gate", "trainer.weight_init=pytorch",
    ]  # fmt: skip
    run_stage(
        "train bae_fit.csv bae_val.csv --save-dir bae --exist-ok --device cpu "
        + " ".join(overrides),
        bae_trainer.train_encoder, work / "bae_fit.csv", work / "bae_val.csv", work / "bae",
        overrides, "cpu", exist_ok=True,
    )  # fmt: skip
    best = work / "bae" / "weights" / "best.safetensors"
    save_float16_encoder(best, work / "bae.safetensors")
    _, embeddings = AudioDataset.from_path(work / "all.csv").stack_vectors("emb")
    history = read_json(work / "bae" / "history.json")
    best_epoch = read_json(best.with_suffix(".json"))["epoch"]
    return {
        "epochs": epochs,
        "best_epoch": best_epoch,
        "first_epoch": history[0],
        "best": history[best_epoch - 1],
        "last": history[-1],
        "float16_bit_agreement": bit_agreement(best, work / "bae.safetensors", embeddings),
    }


def score(
    work: Path, data: str, trials: str, out: str, *overrides: str, calibration: str | None = None
) -> dict:
    """`balr score test` into `work/out` (raw scores without `calibration`); its metrics."""
    options = f"--calibration {calibration}" if calibration else "--no-calibration"
    run_stage(
        f"score test {data} {trials} --save-dir {out} --exist-ok {options} {' '.join(overrides)}",
        score_trials_file, work / data, work / trials, save_dir=work / out, exist_ok=True,
        calibration=work / calibration if calibration else None,
        no_calibration=calibration is None, overrides=overrides,
    )  # fmt: skip
    return trial_metrics(read_json(work / out / "metrics.json"))


def calibrate(work: Path) -> dict:
    """Score the calibration trials raw and fit the calibrators on them."""
    beta = f"scorer.checkpoint_path={work / 'scorer_beta' / 'scorer.safetensors'}"
    raw = {
        "beta": score(work, "calibration.csv", "calibration_trials.tsv", "cal_beta", beta),
        "cosine_emb": score(work, "calibration.csv", "calibration_trials.tsv", "cal_cosine",
                            "scorer=cosine", "scorer.vectors=emb"),
    }  # fmt: skip
    fits = {
        "calibration.json": ("cal_beta", "logistic"),
        "calibration_cosine.json": ("cal_cosine", "logistic"),
        "calibration_pav.json": ("cal_beta", "pav"),
    }
    fitted = {}
    for name, (folder, method) in fits.items():
        command = f"score calibrate {folder}/scores.csv calibration.csv --method {method}"
        run_stage(f"{command} --out {name}", calibrate_scores_file, work / folder / "scores.csv",
                  work / "calibration.csv", method=method, out=work / name)  # fmt: skip
        fitted[name] = _calibrator_summary(Calibrator.load(work / name))
    return {"raw_on_calibration_trials": raw, "calibrators": fitted}


def _calibrator_summary(calibrator: Calibrator) -> dict:
    keys = ("method", "slope", "intercept", "lower_bound", "upper_bound", "n_target",
            "n_nontarget")  # fmt: skip
    return {key: calibrator.to_dict()[key] for key in keys}


def evaluate(work: Path) -> dict:
    """Raw and calibrated figures on the two held-out sets."""
    beta = f"scorer.checkpoint_path={work / 'scorer_beta' / 'scorer.safetensors'}"
    cosine = ("scorer=cosine", "scorer.vectors=emb")
    results = {}
    for name, data, trials in (
        ("librispeech_test", "test.csv", "test_trials.tsv"),
        ("voxceleb_test", "voxceleb.csv", "voxceleb_trials.tsv"),
    ):
        results[name] = {
            "beta": score(work, data, trials, f"{name}_beta", beta,
                          calibration="calibration.json"),
            "beta_pav": score(work, data, trials, f"{name}_beta_pav", beta,
                              calibration="calibration_pav.json"),
            "cosine_emb": score(work, data, trials, f"{name}_cosine", *cosine,
                                calibration="calibration_cosine.json"),
        }  # fmt: skip
    return results


def install(work: Path) -> None:
    """Copy the shipped files into the package."""
    files = {
        work / "bae.safetensors": defaults.BAE_CHECKPOINT,
        work / "scorer_beta" / "scorer.safetensors": defaults.SCORER_CHECKPOINT,
        work / "scorer_speech" / "scorer.safetensors": defaults.TYPICALITY_CHECKPOINT,
        work / "calibration.json": defaults.CALIBRATION,
        work / "calibration_cosine.json": defaults.COSINE_CALIBRATION,
        work / "reference_llrs.npz": defaults.REFERENCE_LLRS,
        work / "metrics.json": defaults.METRICS,
    }
    defaults.RESOURCE_DIR.mkdir(parents=True, exist_ok=True)
    for source, target in files.items():
        shutil.copyfile(source, target)
        print(f"installed {target.relative_to(REPO)} ({target.stat().st_size / 1e3:.0f} kB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "default_models")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--segment-s", type=float, default=3.0)
    parser.add_argument("--no-install", action="store_true", help="Leave the package as is.")
    args = parser.parse_args()
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    metrics: dict = {"recipe": "recipes/default_models.sh", "embedding_model": "ge2e"}
    stage = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal stage
        timings[name] = round(time.perf_counter() - stage, 1)
        stage = time.perf_counter()

    metrics["data"] = prepare_data(work, args.segment_s)
    lap("prepare_data")
    options = ["embeddings.num_workers=0", "embeddings.threads=2"]
    run_stage(f"extract all.csv {' '.join(options)}", extract_dataset_embeddings, work / "all.csv",
          overrides=options, device="cpu", progress=False)  # fmt: skip
    record_embedding_model(work)
    lap("extract")
    metrics["bae"] = train_encoder(work, args.epochs)
    lap("train_bae")
    encoder = f"encoder.model.checkpoint_path={work / 'bae.safetensors'}"
    run_stage(f"binarize all.csv --device cpu --force {encoder}", binarize_path, work / "all.csv",
          binarize_config([encoder]), None, True, torch.device("cpu"))  # fmt: skip
    for name in ("beta", "speech"):
        run_stage(f"score train train.csv --save-dir scorer_{name} --exist-ok scorer={name}",
              train_scorer, work / "train.csv", work / f"scorer_{name}",
              overrides=[f"scorer={name}"], exist_ok=True)  # fmt: skip
    lap("binarize_and_fit_scorers")
    metrics["calibration"] = calibrate(work)
    lap("calibrate")
    metrics["test"] = evaluate(work)
    lap("evaluate")
    dataset = AudioDataset.from_path(work / "calibration.csv")
    labels = load_trials(work / "cal_beta" / "scores.csv").labels(dataset)
    cal = Calibrator.load(work / "calibration.json")
    raw = pd.read_csv(work / "cal_beta" / "scores.csv", sep="\t")
    frame = raw.assign(scores=cal.transform(raw["scores"].to_numpy(np.float64)))
    write_table(frame, work / "cal_beta" / "calibrated_scores.csv", sep="\t")
    metrics["reference_llrs"] = reference_llrs(
        work / "cal_beta" / "calibrated_scores.csv", labels, work / "reference_llrs.npz"
    )
    timings["total"] = round(time.perf_counter() - started, 1)
    metrics["seconds"] = timings
    write_metrics(metrics, work / "metrics.json")
    print(json.dumps({k: metrics[k] for k in ("bae", "test", "seconds")}, indent=2))
    if not args.no_install:
        install(work)


if __name__ == "__main__":
    main()
