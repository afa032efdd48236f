"""Rebuild the shipped default models from ../shared/data (called by default_models.sh).

Corpora: LibriSpeech (one utterance per speaker, cut into ~3 s segments), speechocean762,
Common Voice (several recordings per speaker) and VoxCeleb (held-out check only). Each
splittable corpus's speakers are split with seed 0 into disjoint parts (the splits of
docs/research/calibration_and_gap.md, section 1): `enc` trains the BAE, `ref` is the
reference population of the scorers, `cal` gives the calibration trials, `test` is held out.
The 4 speakers of examples/audio are used nowhere.

Stages (each one library call, the one its `balr` command makes, printed as that command
before it runs): prepare the data -> extract GE2E embeddings (cached in the work dir: a
rerun skips them) -> train the BAE -> float16 copy -> binarize -> fit the beta and speech
scorers on `ref` -> score the calibration trials -> fit the calibrators (beta; cosine of
embeddings), corpus-balanced -> score every held-out test part -> metrics.json,
reference_llrs.npz, install the files in the package.
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
from default_models import (  # beside this script
    all_pairs_trials,
    bit_agreement,
    librispeech_recordings,
    read_json,
    save_float16_encoder,
    segment_corpus,
    split_speakers,
    trial_metrics,
    write_metrics,
    write_table,
)

from balr import defaults
from balr.binary_attributes import trainer as bae_trainer
from balr.binary_attributes.binarize import BinarizeRun, binarize_path
from balr.binary_attributes.config import binarize_config, train_config
from balr.calibration import Calibrator
from balr.conditions import sidecar_path
from balr.data import AudioDataset
from balr.data.ledger import records_folder
from balr.data.provenance import EmbeddingProvenance, read_provenance, write_provenance
from balr.data.speech import find_speech_durations
from balr.embeddings.extract import ExtractionRun, extract_config, extract_dataset_embeddings
from balr.evaluation.metrics import misleading_shares
from balr.fileio import atomic_write_json
from balr.scoring.config import ScoreSettings
from balr.scoring.jobs import (
    CalibrationFit,
    ScoringRun,
    TrialScoring,
    calibrate_scores_file,
    score_trials_file,
    train_scorer,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
LIBRISPEECH = SHARED / "librispeech-train-clean-100-1utt"
SPEECHOCEAN = SHARED / "speechocean762"
COMMONVOICE = SHARED / "commonvoice-6.1-sample"
VOXCELEB2 = SHARED / "voxceleb" / "voxceleb2"
VOXCELEB1 = SHARED / "voxceleb" / "voxceleb1"
#: the bundled README example (examples/audio): never used to build the defaults
EXAMPLE_SPEAKERS = ("id00906", "id01184", "id03184", "id07531")
SEED = 0
#: speakers per part (-1: the rest), drawn in this order from each corpus's shuffled speakers
SPLITS = {
    "librispeech": {"enc": 100, "ref": 50, "cal": 50, "test": -1},
    "speechocean": {"enc": 100, "ref": 50, "cal": 50, "test": -1},
    "commonvoice": {"enc": 300, "ref": 150, "cal": 150, "test": -1},
    "voxceleb": {"test": -1},  # 6 speakers x 3 clips: a held-out check only
}
FITTED = ("librispeech", "speechocean", "commonvoice")  # corpora with enc/ref/cal parts
#: the BAE training choices of the shipped encoder, each measured on held-out speakers
#: (docs/default_models.md, docs/differences.md): MSE only (the reference's [mse, triplet]
#: gives 2.3-2.9x the cosine EER, docs/research/calibration_and_gap.md section 2), torch's
#: default Linear init (the reference's Kaiming-normal gives 55 % active bits and 2.5x the
#: cosine EER on LibriSpeech, vs 39 % and 1.5x), 32 x 4 batches, 30 epochs; no validation
#: set: the last epoch is shipped; weights written only after the last epoch (10x faster);
#: the last short batch of an epoch dropped (balr 0.1's sampler, which trained the shipped
#: encoder; the reference pads it: `data.drop_last=false`, the default)
BAE_OVERRIDES = [
    "trainer.losses=[mse]", "trainer.weight_init=pytorch", "data.N_classes_per_batch=32",
    "data.M_samples_per_class=4", "model.latent_dim=512", f"trainer.seed={SEED}",
    "trainer.val_period=0", "trainer.log_period=0", "trainer.progress=false",
    "trainer.checkpoint_period=0", "data.drop_last=true",
]  # fmt: skip
BAE_EPOCHS = 30
COLUMNS = ["id", "audio", "speaker"]
#: different-speaker trials per corpus kept in reference_llrs.npz (all same-speaker ones are)
REFERENCE_NONTARGETS = 20_000


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


# ---------------------------------------------------------------------- data


def metadata_items(folder: Path, corpus: str) -> pd.DataFrame:
    """`id, audio (absolute), speaker` of a corpus described by its metadata.csv."""
    meta = pd.read_csv(folder / "metadata.csv", dtype=str)
    return pd.DataFrame(
        {
            "id": meta["id"],
            "audio": [str(folder / a) for a in meta["audio"]],
            "speaker": meta["speaker"],
            "corpus": corpus,
        }
    )


def voxceleb_recordings() -> list[tuple[Path, str]]:
    """Held-out VoxCeleb clips: VoxCeleb2 speakers other than the example's, + VoxCeleb1."""
    vox2 = [
        (p, p.parent.name)
        for p in sorted(VOXCELEB2.glob("id*/*.wav"))
        if p.parent.name not in EXAMPLE_SPEAKERS
    ]
    vox1 = [(p, p.stem.split("+")[0]) for p in sorted(VOXCELEB1.glob("*.wav"))]
    return vox2 + vox1


def corpus_items(work: Path, segment_s: float) -> pd.DataFrame:
    """Every item of the four corpora: `id, audio, speaker, corpus` (+ `source` recording)."""
    librispeech = segment_corpus(
        librispeech_recordings(LIBRISPEECH), work / "segments", segment_s
    ).assign(corpus="librispeech")
    librispeech["audio"] = "segments/" + librispeech["audio"]
    # whole clips, one "segment" each (segment length above the longest clip), ids SPK/UTT
    voxceleb = segment_corpus(voxceleb_recordings(), work / "voxceleb", segment_s=1e6)
    voxceleb = voxceleb.assign(corpus="voxceleb", audio="voxceleb/" + voxceleb["audio"])
    others = [
        metadata_items(SPEECHOCEAN, "speechocean"),
        metadata_items(COMMONVOICE, "commonvoice"),
    ]
    items = pd.concat([librispeech, *others, voxceleb], ignore_index=True)
    items["source"] = items["source"].fillna(items["id"])
    return items[["id", "audio", "speaker", "corpus", "source"]]


def assign_parts(items: pd.DataFrame) -> pd.DataFrame:
    """`part` of every item: its speaker's part in its corpus's seeded split."""
    part = pd.Series("", index=items.index)
    for corpus, sizes in SPLITS.items():
        mine = items["corpus"] == corpus
        groups = split_speakers(items.loc[mine, "speaker"], sizes, seed=SEED)
        for name, speakers in groups.items():
            part[mine & items["speaker"].isin(speakers)] = name
    return items.assign(part=part)


def within_corpus_trials(items: pd.DataFrame) -> pd.DataFrame:
    """All pairs inside each corpus of `items` (no cross-corpus pair: trivially easy
    non-targets), with the corpus as the trial's `group`."""
    frames = [
        all_pairs_trials(part).assign(group=corpus)
        for corpus, part in items.groupby("corpus", sort=False)
    ]
    return pd.concat(frames, ignore_index=True)


def prepare_data(work: Path, segment_s: float) -> pd.DataFrame:
    """all.csv (every item) and items.csv (with corpus and part) in `work`."""
    items = assign_parts(corpus_items(work, segment_s))
    write_table(items[COLUMNS], work / "all.csv")
    write_table(items, work / "items.csv")
    return items


def write_parts(work: Path, items: pd.DataFrame) -> dict:
    """Dataset CSVs and trial lists of every part, from the items with an embedding."""
    fitted = items[items["corpus"].isin(FITTED)]
    for part in ("enc", "ref", "cal"):
        write_table(fitted[fitted["part"] == part][COLUMNS], work / f"{part}.csv")
    write_table(within_corpus_trials(fitted[fitted["part"] == "cal"]), work / "cal_trials.tsv",
                sep="\t")  # fmt: skip
    for corpus in SPLITS:
        test = items[(items["corpus"] == corpus) & (items["part"] == "test")]
        write_table(test[COLUMNS], work / f"test_{corpus}.csv")
        write_table(all_pairs_trials(test), work / f"test_{corpus}_trials.tsv", sep="\t")
    return data_counts(items)


def data_counts(items: pd.DataFrame) -> dict:
    """Speakers, items, same- and different-speaker pairs and durations per corpus and part."""
    counts: dict = {"seed": SEED, "splits": SPLITS, "corpora": {}}
    for (corpus, part), group in items.groupby(["corpus", "part"], sort=False):
        n = len(group)
        target = int(sum(c * (c - 1) // 2 for c in group["speaker"].value_counts()))
        counts["corpora"].setdefault(corpus, {})[part] = {
            "speakers": int(group["speaker"].nunique()),
            "items": n,
            "target_pairs": target,
            "nontarget_pairs": n * (n - 1) // 2 - target,
            "mean_speech_s": round(float(group["speech_s"].mean()), 2),
        }
    return counts


def record_embedding_model(work: Path) -> None:
    """Make sure `work/.balr/embedding_model.json` (the records folder of `work`) says GE2E,
    so the trained encoder records it: `extract` leaves a work dir unrecorded when it holds
    embeddings of a run made before balr recorded the model; every embedding of this recipe
    is made by the default GE2E."""
    records = records_folder(None, work)
    if read_provenance(records) is None and read_provenance(work) is None:
        write_provenance(records, EmbeddingProvenance(defaults.EMBEDDING_MODEL, 256))
        print(f"  recorded {defaults.EMBEDDING_MODEL} for the embeddings of {work}", flush=True)


# ---------------------------------------------------------------------- stages


def extract(work: Path, items: pd.DataFrame) -> pd.DataFrame:
    """GE2E embeddings of all.csv (a vector store in `work`; what exists is skipped) and the
    items that got one, with their net speech seconds."""
    options = ["embeddings.vector_format=store", "embeddings.num_workers=0",
               "embeddings.threads=2"]  # fmt: skip
    run = ExtractionRun(extract_config(options), device="cpu", progress=False)
    run_stage(f"extract all.csv {' '.join(options)}", extract_dataset_embeddings,
              work / "all.csv", run)  # fmt: skip
    speech = find_speech_durations(work) or {}  # in work/.balr/ (work/ before balr 0.x)
    kept = items[items["id"].isin(speech)].copy()
    kept["speech_s"] = kept["id"].map(speech)
    if len(kept) < len(items):
        print(f"  {len(items) - len(kept)} items without an embedding are left out")
    return kept


def train_encoder(work: Path, epochs: int) -> dict:
    """Train the BAE on the `enc` parts, then keep a float16 copy of its last epoch."""
    overrides = [*BAE_OVERRIDES, f"trainer.epochs={epochs}"]
    run_stage(
        "train enc.csv ref.csv --save-dir bae --exist-ok --device cpu " + " ".join(overrides),
        bae_trainer.train_encoder, work / "enc.csv", work / "ref.csv",
        bae_trainer.TrainingRun(train_config(overrides), work / "bae", True, "cpu"),
    )  # fmt: skip
    last = work / "bae" / "weights" / "last.safetensors"
    save_float16_encoder(last, work / "bae.safetensors")
    _, embeddings = AudioDataset.from_path(work / "all.csv").stack_vectors("emb")
    history = read_json(work / "bae" / "history.json")
    return {
        "overrides": overrides,
        "first_epoch": history[0],
        "last_epoch": history[-1],
        "float16_bit_agreement": bit_agreement(last, work / "bae.safetensors", embeddings),
    }


BETA = "beta"
COSINE = "cosine_emb"


def scorer_overrides(work: Path, system: str) -> list[str]:
    if system == BETA:
        return [f"scorer.checkpoint_path={work / 'scorer_beta' / 'scorer.safetensors'}"]
    return ["scorer=cosine", "scorer.vectors=emb"]


def score(work: Path, system: str, data: str, trials: str, out: str,
          calibration: str | None = None) -> dict:  # fmt: skip
    """`balr score test` into `work/out` (raw scores without `calibration`); its metrics."""
    overrides = scorer_overrides(work, system)
    options = f"--calibration {calibration}" if calibration else "--no-calibration"
    run_stage(
        f"score test {data} {trials} --save-dir {out} --exist-ok {options} {' '.join(overrides)}",
        score_trials_file, work / data, work / trials, TrialScoring(
            settings=ScoreSettings.from_overrides(overrides), save_dir=work / out,
            exist_ok=True, calibration=work / calibration if calibration else None,
            no_calibration=calibration is None,
        ),
    )  # fmt: skip
    return trial_metrics(read_json(work / out / "metrics.json"))


#: the calibration method shipped per system, chosen on the held-out test parts
#: (docs/default_models.md): qmf lowers the beta Cllr on every held-out corpus; for the
#: cosine of embeddings it helps in-domain but doubles the Cllr on VoxCeleb (recordings
#: longer than any calibrated), so logistic is shipped there. The other method is fitted
#: beside it for that comparison.
SHIPPED_METHODS = {"beta": "qmf", "cosine_emb": "logistic"}
STEMS = {BETA: "calibration", COSINE: "calibration_cosine"}


#: the corpora and the scores each calibration is fitted on, as its provenance names them
CORPUS_NAMES = {
    "librispeech": "LibriSpeech train-clean-100", "speechocean": "speechocean762",
    "commonvoice": "Common Voice 6.1",
}  # fmt: skip
SCORED = {BETA: "beta-scorer scores of BA vectors", COSINE: "cosine scores of GE2E embeddings"}


def provenance(system: str, method: str) -> str:
    """The description of a shipped calibration: its data and recipe, no build folder."""
    corpora = ", ".join(CORPUS_NAMES[corpus] for corpus in FITTED)
    return (
        f"{method} fitted on the raw {SCORED[system]} of the calibration trials ('cal' "
        f"speakers, seed {SEED}) of {corpora}, each corpus weighing equally; built by "
        "recipes/default_models.sh (docs/default_models.md)"
    )


def name_provenance(path: Path, system: str, method: str) -> None:
    """Replace the build-folder description that `score calibrate` wrote into `path`."""
    record = json.loads(path.read_text())
    record["calibrator"]["description"] = provenance(system, method)
    atomic_write_json(path, record)


def calibration_file(system: str, method: str) -> str:
    """calibration.json / calibration_cosine.json for the shipped method, else suffixed."""
    stem = STEMS[system] if method == SHIPPED_METHODS[system] else f"{STEMS[system]}_{method}"
    return f"{stem}.json"


def methods(system: str) -> tuple[str, str]:
    """The shipped calibration method of `system`, then the one compared with it."""
    shipped = SHIPPED_METHODS[system]
    return shipped, "logistic" if shipped == "qmf" else "qmf"


def calibrate(work: Path) -> dict:
    """Score the calibration trials raw and fit each system's calibrators on them: each
    corpus weighs equally (trial column `group`), with a conditions description."""
    fitted: dict = {}
    for system in STEMS:
        folder = f"cal_{system}"
        score(work, system, "cal.csv", "cal_trials.tsv", folder)
        for method in methods(system):
            name = calibration_file(system, method)
            command = f"score calibrate {folder}/scores.csv cal.csv --method {method}"
            run_stage(f"{command} --group-column group --out {name}", calibrate_scores_file,
                      work / folder / "scores.csv", work / "cal.csv",
                      CalibrationFit(method=method, out=work / name,
                                     group_column="group"))  # fmt: skip
            name_provenance(work / name, system, method)
            fitted[name] = Calibrator.load(work / name).to_dict()
            fitted[name]["conditions"] = json.loads((work / name).read_text()).get("conditions")
    return fitted


def trial_shares(scores_csv: Path, labels: np.ndarray) -> dict:
    """Share of different-speaker trials with LR > 100, of same-speaker ones with LR < 1/100,
    and of trials out of the calibration's conditions."""
    frame = pd.read_csv(scores_csv, sep="\t")
    shares = misleading_shares(frame["scores"].to_numpy(np.float64), labels)
    if "in_conditions" in frame:
        shares["out_of_conditions"] = float(1 - frame["in_conditions"].astype(bool).mean())
    return shares


def evaluate(work: Path) -> dict:
    """Calibrated figures of both systems (both calibration methods) on every corpus's
    held-out test part."""
    results: dict = {}
    for corpus in SPLITS:
        data, trials = f"test_{corpus}.csv", f"test_{corpus}_trials.tsv"
        labels = trial_labels(work / data, work / trials)
        for system in STEMS:
            for method in methods(system):
                key = system if method == SHIPPED_METHODS[system] else f"{system}_{method}"
                out = f"test_{corpus}_{key}"
                figures = score(work, system, data, trials, out, calibration_file(system, method))
                figures.update(trial_shares(work / out / "scores.csv", labels))
                results.setdefault(corpus, {})[key] = figures
    for systems in results.values():
        systems["eer_ratio_beta_to_cosine"] = systems[BETA]["eer"] / systems[COSINE]["eer"]
    return results


def trial_labels(data: Path, trials: Path) -> np.ndarray:
    """1 same speaker, 0 different speakers, per row of a trials file of `data`'s items."""
    speaker = dict(zip(*[pd.read_csv(data, dtype=str)[c] for c in ("id", "speaker")], strict=True))
    frame = pd.read_csv(trials, sep="\t", dtype=str)
    return (frame["enrollment"].map(speaker) == frame["test"].map(speaker)).to_numpy(np.int64)


def write_reference_llrs(work: Path) -> dict:
    """Calibrated beta LLRs of the held-out test trials of every corpus (what `balr compare`
    plots a case against): all same-speaker trials, at most `REFERENCE_NONTARGETS` seeded
    different-speaker ones per corpus (keeps the file small), with each one's corpus."""
    rng = np.random.default_rng(SEED)
    llrs: dict[str, list[np.ndarray]] = {"target": [], "nontarget": []}
    corpus_of: dict[str, list[np.ndarray]] = {"target": [], "nontarget": []}
    counts: dict = {}
    for number, corpus in enumerate(SPLITS):
        labels = trial_labels(work / f"test_{corpus}.csv", work / f"test_{corpus}_trials.tsv")
        scores = pd.read_csv(work / f"test_{corpus}_{BETA}" / "scores.csv", sep="\t")["scores"]
        scores = scores.to_numpy(np.float64)
        for name, label in (("target", 1), ("nontarget", 0)):
            keep = np.flatnonzero((labels == label) & np.isfinite(scores))
            if name == "nontarget" and len(keep) > REFERENCE_NONTARGETS:
                keep = np.sort(rng.choice(keep, REFERENCE_NONTARGETS, replace=False))
            llrs[name].append(scores[keep].astype(np.float32))
            corpus_of[name].append(np.full(len(keep), number, np.int8))
            counts.setdefault(corpus, {})[name] = len(keep)
    arrays = {name: np.concatenate(values) for name, values in llrs.items()}
    arrays |= {f"{name}_corpus": np.concatenate(v) for name, v in corpus_of.items()}
    with open(work / "reference_llrs.npz", "wb") as handle:
        np.savez_compressed(handle, corpora=np.array(list(SPLITS)), **arrays)
    return {"target": len(arrays["target"]), "nontarget": len(arrays["nontarget"]),
            "per_corpus": counts}  # fmt: skip


def install(work: Path) -> None:
    """Copy the shipped files into the package."""
    files = {
        work / "bae.safetensors": defaults.BAE_CHECKPOINT,
        work / "scorer_beta" / "scorer.safetensors": defaults.SCORER_CHECKPOINT,
        work / "scorer_speech" / "scorer.safetensors": defaults.TYPICALITY_CHECKPOINT,
        work / "calibration.json": defaults.CALIBRATION,
        work / "calibration_cosine.json": defaults.COSINE_CALIBRATION,
        work / "calibration.conditions.safetensors": sidecar_path(defaults.CALIBRATION),
        work / "calibration_cosine.conditions.safetensors": sidecar_path(
            defaults.COSINE_CALIBRATION
        ),
        work / "reference_llrs.npz": defaults.REFERENCE_LLRS,
        work / "metrics.json": defaults.METRICS,
    }
    defaults.RESOURCE_DIR.mkdir(parents=True, exist_ok=True)
    for source, target in files.items():
        shutil.copyfile(source, target)
        print(f"installed {target.relative_to(REPO)} ({target.stat().st_size / 1e3:.0f} kB)")
    print(f"wrote {defaults.write_manifest().relative_to(REPO)} (SHA-256 of the shipped files)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "default_models")
    parser.add_argument("--epochs", type=int, default=BAE_EPOCHS)
    parser.add_argument("--segment-s", type=float, default=3.0)
    parser.add_argument("--no-install", action="store_true", help="Leave the package as is.")
    args = parser.parse_args()
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = stage = time.perf_counter()
    metrics: dict = {"recipe": "recipes/default_models.sh", "embedding_model": "ge2e"}
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal stage
        timings[name] = round(time.perf_counter() - stage, 1)
        print(f"# stage {name}: {timings[name]} s", flush=True)
        stage = time.perf_counter()

    items = prepare_data(work, args.segment_s)
    lap("prepare_data")
    items = extract(work, items)
    record_embedding_model(work)
    metrics["data"] = write_parts(work, items)
    lap("extract")
    metrics["bae"] = train_encoder(work, args.epochs)
    lap("train_bae")
    encoder = f"encoder.model.checkpoint_path={work / 'bae.safetensors'}"
    options = [encoder, "vector_format=store"]
    run_stage(f"binarize all.csv --device cpu --force {' '.join(options)}", binarize_path,
              work / "all.csv", BinarizeRun(binarize_config(options), force=True,
                                            device=torch.device("cpu")))  # fmt: skip
    for name in ("beta", "speech"):
        run_stage(f"score train ref.csv --save-dir scorer_{name} --exist-ok scorer={name}",
                  train_scorer, work / "ref.csv",
                  ScoringRun(ScoreSettings.from_overrides([f"scorer={name}"]),
                             work / f"scorer_{name}", exist_ok=True))  # fmt: skip
    lap("binarize_and_fit_scorers")
    metrics["calibration_methods"] = SHIPPED_METHODS
    metrics["calibration"] = calibrate(work)
    lap("calibrate")
    metrics["test"] = evaluate(work)
    metrics["reference_llrs"] = write_reference_llrs(work)
    lap("evaluate")
    timings["total"] = round(time.perf_counter() - started, 1)
    metrics["seconds"] = timings
    write_metrics(metrics, work / "metrics.json")
    print(json.dumps({k: metrics[k] for k in ("test", "seconds")}, indent=2))
    if not args.no_install:
        install(work)


if __name__ == "__main__":
    main()
