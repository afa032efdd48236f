"""Research (issue 13), step 3: the BA-LR gap. EER of cosine on GE2E embeddings vs binary
attributes (random projections, BAE variants) x scorers, on every held-out test part.

Each BAE is trained with balr.binary_attributes.BAETrainer on the `enc` speakers of its
training population, its scorers fitted on the `ref` speakers of its reference population;
all figures on the `test` parts (speaker-disjoint from both). Resumable: rows already in
CACHE/ablation.csv are skipped. Usage: r03_bae_ablation.py [--only NAME ...]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
from rcommon import (
    CACHE,
    TEST_SETS,
    binarize,
    cosine_matrix,
    fit_scorer,
    load,
    lr_matrix,
    metrics,
    pair_values,
    part_index,
    train_bae,
    trials,
)

ALL = ("librispeech", "speechocean", "commonvoice")
LS = ("librispeech",)
TODAY = ["data.N_classes_per_batch=32", "data.M_samples_per_class=4"]
# name: (training population, reference population, trainer overrides, epochs)
VARIANTS = {
    "bae_today_ls": (LS, LS, TODAY, 100),
    "bae_today_all": (ALL, ALL, TODAY, 30),
    "bae_today_all_ref_ls": (ALL, LS, TODAY, 30),
    "bae_nosparsity": (ALL, ALL, TODAY + ["trainer.losses=[mse,triplet]"], 30),
    "bae_mse_only": (ALL, ALL, TODAY + ["trainer.losses=[mse]"], 30),
    "bae_triplet_only": (ALL, ALL, TODAY + ["trainer.losses=[triplet]"], 30),
    "bae_sparsity_w0.1": (ALL, ALL, TODAY + ["trainer.losses.sparsity.weight=0.1"], 30),
    "bae_sparsity_w10": (ALL, ALL, TODAY + ["trainer.losses.sparsity.weight=10"], 30),
    "bae_arcface": (ALL, ALL, TODAY + ["trainer.losses=[mse,arcface,sparsity]"], 30),
    "bae_arcface_nosp": (ALL, ALL, TODAY + ["trainer.losses=[mse,arcface]"], 30),
    "bae_m256": (ALL, ALL, TODAY + ["model.latent_dim=256"], 30),
    "bae_m1024": (ALL, ALL, TODAY + ["model.latent_dim=1024"], 30),
    "bae_m1024_nosp": (
        ALL,
        ALL,
        TODAY + ["model.latent_dim=1024", "trainer.losses=[mse,triplet]"],
        30,
    ),
    "bae_m2048_nosp": (
        ALL,
        ALL,
        TODAY + ["model.latent_dim=2048", "trainer.losses=[mse,triplet]"],
        30,
    ),
    "bae_N64M2": (ALL, ALL, ["data.N_classes_per_batch=64", "data.M_samples_per_class=2"], 30),
    "bae_N16M8": (ALL, ALL, ["data.N_classes_per_batch=16", "data.M_samples_per_class=8"], 30),
    "bae_mse_only_ls": (LS, LS, TODAY + ["trainer.losses=[mse]"], 100),
    "bae_mse_sparsity": (ALL, ALL, TODAY + ["trainer.losses=[mse,sparsity]"], 30),
    "bae_mse_only_m1024": (ALL, ALL, TODAY + ["trainer.losses=[mse]", "model.latent_dim=1024"], 30),
    "bae_mse_only_e100": (ALL, ALL, TODAY + ["trainer.losses=[mse]"], 100),
}
SCORERS = ("beta", "maxllr", "speech", "cosine_bits")


def random_bits(emb, m, seed, centre=None, quantile=None, white=None):
    w = np.random.default_rng(seed).standard_normal((emb.shape[1], m))
    x = emb - (0 if centre is None else centre)
    if white is not None:  # whiten with the (shrunk) covariance of the reference population
        cov = np.cov((white - centre).T)
        cov = 0.9 * cov + 0.1 * np.trace(cov) / len(cov) * np.eye(len(cov))
        vals, vecs = np.linalg.eigh(cov)
        x = x @ vecs / np.sqrt(vals)
    proj = x @ w
    if quantile is None:
        return (proj > 0).astype(np.int8)
    return (proj > np.quantile(proj, quantile, axis=0)).astype(np.int8)


def evaluate_bits(name, bits, items, ref_index, extra, out_rows, seconds=0.0):
    spk = items.speaker.to_numpy()
    scorers = {
        s: fit_scorer(s, bits[ref_index], spk[ref_index]) for s in SCORERS if s != "cosine_bits"
    }
    for corpus in TEST_SETS:
        idx = part_index(items, corpus, "test")
        if not len(idx):
            continue
        i, j, lab = trials(items, idx)
        for s in SCORERS:
            b = bits[idx]
            mat = cosine_matrix(b) if s == "cosine_bits" else lr_matrix(scorers[s], b)
            m = metrics(pair_values(mat, idx, i, j), lab, llr=False)
            out_rows.append(
                {
                    "variant": name,
                    "scorer": s,
                    "test": corpus,
                    **extra,
                    "active": float(bits[idx].mean()),
                    "eer": m["eer"],
                    "min_cllr": m["min_cllr"],
                    "train_s": round(seconds, 1),
                }
            )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--out", default=str(CACHE / "ablation.csv"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    items, emb = load()
    spk = items.speaker.to_numpy()
    done = pd.read_csv(args.out) if pd.io.common.file_exists(args.out) else pd.DataFrame()
    have = set(done.variant) if len(done) else set()
    rows: list[dict] = []

    def flush():
        frame = pd.concat([done, pd.DataFrame(rows)], ignore_index=True)
        frame.to_csv(args.out, index=False)
        return frame

    if "cosine_emb" not in have:
        for corpus in TEST_SETS:
            idx = part_index(items, corpus, "test")
            if not len(idx):
                continue
            i, j, lab = trials(items, idx)
            m = metrics(pair_values(cosine_matrix(emb[idx]), idx, i, j), lab, llr=False)
            rows.append(
                {
                    "variant": "cosine_emb",
                    "scorer": "cosine",
                    "test": corpus,
                    "eer": m["eer"],
                    "min_cllr": m["min_cllr"],
                }
            )
    ref_all = part_index(items, part="ref", corpora=ALL)
    centre = emb[ref_all].mean(0)
    if "cosine_emb_centred" not in have:  # cosine after subtracting the reference mean
        for corpus in TEST_SETS:
            idx = part_index(items, corpus, "test")
            i, j, lab = trials(items, idx)
            mat = cosine_matrix(emb[idx] - centre)
            m = metrics(pair_values(mat, idx, i, j), lab, llr=False)
            rows.append(
                {
                    "variant": "cosine_emb_centred",
                    "scorer": "cosine",
                    "test": corpus,
                    "eer": m["eer"],
                    "min_cllr": m["min_cllr"],
                }
            )
    for name, kw in {
        "rp512_dense": dict(m=512),
        "rp512_centred": dict(m=512, centre=centre),
        "rp2048_centred": dict(m=2048, centre=centre),
        "rp512_10pct": dict(m=512, centre=centre, quantile=0.9),
        "rp1024_centred": dict(m=1024, centre=centre),
        "rp512_white": dict(m=512, centre=centre, white=emb[ref_all]),
    }.items():
        if name in have or (args.only and name not in args.only):
            continue
        evaluate_bits(name, random_bits(emb, seed=0, **kw), items, ref_all, {"pop": "all"}, rows)
        flush()
    for name, (train_pop, ref_pop, overrides, epochs) in VARIANTS.items():
        if name in have or (args.only and name not in args.only):
            continue
        enc = part_index(items, part="enc", corpora=train_pop)
        model, seconds = train_bae(emb[enc], spk[enc], overrides, epochs, workdir=CACHE)
        bits = binarize(model, emb)
        (CACHE / "bits").mkdir(exist_ok=True)
        np.save(CACHE / "bits" / f"{name}.npy", bits)
        ref = part_index(items, part="ref", corpora=ref_pop)
        extra = {
            "pop": "+".join(c[:2] for c in train_pop),
            "ref": "+".join(c[:2] for c in ref_pop),
            "epochs": epochs,
        }
        evaluate_bits(name, bits, items, ref, extra, rows, seconds)
        frame = flush()
        print(
            name,
            f"{seconds:.0f} s",
            frame[frame.variant == name]
            .pivot_table(index="scorer", columns="test", values="eer")
            .round(4)
            .to_dict(),
            flush=True,
        )
    frame = flush()
    print(
        frame.pivot_table(index=["variant", "scorer"], columns="test", values="eer", sort=False)
        .mul(100)
        .round(2)
        .to_string()
    )


if __name__ == "__main__":
    main()
