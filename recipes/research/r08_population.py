"""Research (issue 18), items 2-3: a population-adaptive back-end, measured per held-out
corpus and channel variant, with populations of K speakers drawn from the set itself.

For each test set (LS / SO / CV test parts, original and the `telephone` and `hall`
variants) and population setting (K speakers drawn with a seed; `half`: half of the set's
speakers, both halves in turn; `Kx1`: K speakers with one recording each), the population
is removed from the set and all pairs of the remaining recordings are scored.

Calibration, one per method and population setting, fitted like the shipped one: on the
`cal` trials of LS + SO + CV (each corpus weighing equally, classes balanced inside), each
corpus adapted to its own population drawn with the same setting from its `ref` part
(`half`: the whole ref part). Cosine systems: logistic; BA-LR: qmf with net speech
durations (as shipped).

Cosine methods (embedding adaptation, then cosine; r08_common.Adapter):
  none (shipped calibration_cosine.json, and refitted), train (centre on the training mean),
  centre with shrinkage tau (in population recordings) toward the training mean, whitening
  (shrunk toward identity / the training covariance), CORAL, WCCN (training / population
  within-speaker covariance), S-norm and AS-norm with the population as cohort.
BA-LR methods:
  ship        shipped BAE + beta + qmf
  typ:T       typicality (beta activation rate) refitted on the population, shrunk toward the
              shipped one with tau T (population recordings); precision kept; calibration
              shipped (`/ship`) or refitted with the same adaptation per corpus (`/refit`)
  betapop     beta fitted on the population alone (the issue's measurement), shipped calibration
  baeC:T      hook (i): embeddings centred (+LN) per corpus on its own population (enc/ref
              parts: the corpus's whole ref part; cal trials: K ref speakers; test: K test
              speakers, mean shrunk with tau T), BAE retrained on the adapted enc parts
              (shipped recipe), beta on the adapted ref parts, qmf on the adapted cal trials
  baeC:T+typ  both hooks
  bae0        the same retraining without adaptation (control of retraining noise)
  ... cal20   the calibration fitted once with populations of 20 ref speakers per corpus,
              applied whatever the test population's size (the product's single calibration)
Writes CACHE/r08/population_METHODS.csv (one row per method, set, setting, draw) and
prints mean-over-draws tables. Usage:
  r08_population.py [--cache DIR] [--seeds 3] [--part cosine|balr] [--ks 2 3 5 10 20 half]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from r08_common import (  # noqa: E402
    FITTED,
    SHORT,
    VARIANTS,
    Adapter,
    Shipped,
    Tee,
    TrainStats,
    adapted_alpha,
    base_args,
    beta_from_alpha,
    beta_matrix,
    binarize,
    cosine,
    draw_population,
    fit_beta,
    fit_cal,
    load_data,
    metrics,
    pairs_of,
    raw_eer,
    select,
    snorm,
    train_bae,
)


def parse_k(k: str):
    if k == "half":
        return "half"
    if k.endswith("x1"):
        return k
    return int(k)


def population(items, index, k, seed):
    """(pop rows, scored rows) of a setting; `Kx1`: K speakers, one random recording each."""
    if isinstance(k, str) and k.endswith("x1"):
        kk = int(k[:-2])
        pop, rest = draw_population(items, index, kk, seed)
        spk = items.speaker.to_numpy()[pop]
        rng = np.random.default_rng(3000 + seed)
        one = [rng.choice(pop[spk == s]) for s in sorted(set(spk))]
        return np.array(one), rest
    return draw_population(items, index, k, seed)


def cal_population(items, corpus, k, seed):
    ref = select(items, corpus, "ref")
    if k == "half":
        return ref
    return population(items, ref, k, seed)[0]


# ------------------------------------------------------------------------------ cosine systems
def cosine_methods(train):
    m = {
        "none": dict(kind="none"),
        "train": dict(kind="train"),
        "c:0": dict(kind="centre", tau=0),
        "c:10": dict(kind="centre", tau=10),
        "c:30": dict(kind="centre", tau=30),
        "c:100": dict(kind="centre", tau=100),
        "wid:c30/300": dict(kind="whiten_id", tau=30, tau_c=300),
        "wtr:c30/100": dict(kind="whiten_tr", tau=30, tau_c=100),
        "wtr:c30/300": dict(kind="whiten_tr", tau=30, tau_c=300),
        "coral:c30/100": dict(kind="coral", tau=30, tau_c=100),
        "coral:c30/300": dict(kind="coral", tau=30, tau_c=300),
        "wccn_tr:c30": dict(kind="wccn_tr", tau=30),
        "wccn:c30/100": dict(kind="wccn", tau=30, tau_c=100),
        "snorm": dict(kind="none", norm="s"),
        "asnorm": dict(kind="none", norm="as"),
        "c:30+snorm": dict(kind="centre", tau=30, norm="s"),
        "c:30+asnorm": dict(kind="centre", tau=30, norm="as"),
        "c:30 cal20": dict(kind="centre", tau=30, cal_k=20),
        "coral:c30/300 cal20": dict(kind="coral", tau=30, tau_c=300, cal_k=20),
    }
    return m


CORE_COSINE = ("none", "train", "c:0", "c:10", "c:30", "c:100", "snorm", "c:30+snorm",
               "c:30 cal20", "coral:c30/300", "coral:c30/300 cal20")  # fmt: skip


def cosine_scores(spec, train, items, emb, pop, rows):
    """(n, n) scores of `rows` after the method `spec` with population rows `pop`."""
    ad = Adapter(spec["kind"], train, spec.get("tau", 0), spec.get("tau_c", 0))
    ad.fit(emb[pop] if len(pop) else None, items.speaker.to_numpy()[pop])
    x = ad.transform(emb[rows])
    s = cosine(x)
    norm = spec.get("norm")
    if norm:
        c = ad.transform(emb[pop])
        cs = cosine(x, c)
        top = None if norm == "s" else max(5, len(pop) // 5)
        s = snorm(s, cs, cs, top)
    return s


def run_cosine(args, log, items, emb, train, sh, ks, seeds, out_rows):
    methods = cosine_methods(train)
    for k in ks:
        names = list(methods) if k in (5, 20, "half") else list(CORE_COSINE)
        draws = [0, 1] if k == "half" else list(range(seeds))
        for seed in draws:
            t0 = time.perf_counter()
            # calibration trials: cal part of each fitted corpus, population from its ref part
            cals = {}
            for ck in (k, 20):
                cals[ck] = {}
                for corpus in FITTED:
                    rows = select(items, corpus, "cal")
                    a, b, y = pairs_of(items, rows)
                    cals[ck][corpus] = (cal_population(items, corpus, ck, seed), rows, a, b, y)
            tests = {}
            for corpus in FITTED:
                for variant in VARIANTS:
                    index = select(items, corpus, "test", variant)
                    pop, rows = population(items, index, k, seed)
                    a, b, y = pairs_of(items, rows)
                    tests[(corpus, variant)] = (pop, rows, a, b, y)
            for name in names:
                spec = methods[name]
                sc, yc, gc = [], [], []
                for corpus, (pop, rows, a, b, y) in cals[spec.get("cal_k", k)].items():
                    sc.append(cosine_scores(spec, train, items, emb, pop, rows)[a, b])
                    yc.append(y)
                    gc.append(np.full(len(y), corpus))
                calib = fit_cal(
                    "logistic", np.concatenate(sc), np.concatenate(yc), np.concatenate(gc)
                )
                for (corpus, variant), (pop, rows, a, b, y) in tests.items():
                    s = cosine_scores(spec, train, items, emb, pop, rows)[a, b]
                    variants = [(name, calib)]
                    if name == "none":
                        variants.append(("none/ship", sh.cal_cos))
                    for label, cb in variants:
                        m = metrics(cb.transform(s), y)
                        out_rows.append(dict(system="cosine", method=label, corpus=corpus,
                                             variant=variant, k=str(k), seed=seed,
                                             n_pop=len(pop), n_pop_spk=items.speaker.iloc[pop].nunique(),
                                             cos_eer=m["eer"], **m))  # fmt: skip
            log(
                f"  cosine k={k} seed={seed}: {len(names)} methods, {time.perf_counter() - t0:.0f} s"
            )


# ------------------------------------------------------------------------------ BA-LR systems
class BAESystem:
    """Hook (i): embeddings centred per corpus on its own population, BAE retrained."""

    def __init__(self, items, emb, train, tau_train=0.0, adapt=True, epochs=30):
        self.train, self.adapt = train, adapt
        x, y = [], []
        adapted = np.array(emb, copy=True)
        for corpus in FITTED:
            ref = select(items, corpus, "ref")
            ad = Adapter("centre" if adapt else "none", train, tau_train).fit(emb[ref])
            for part in ("enc", "ref"):
                rows = select(items, corpus, part)
                adapted[rows] = ad.transform(emb[rows])
            enc = select(items, corpus, "enc")
            x.append(adapted[enc])
            y.append(items.speaker.to_numpy()[enc])
        order = np.argsort(
            np.concatenate([items.id.to_numpy()[select(items, c, "enc")] for c in FITTED]),
            kind="stable",
        )
        x, y = np.concatenate(x)[order], np.concatenate(y)[order]
        t0 = time.perf_counter()
        torch.manual_seed(0)
        self.bae, _ = train_bae(x, y, epochs=epochs)
        self.seconds = time.perf_counter() - t0
        ref = np.concatenate([select(items, c, "ref") for c in FITTED])
        self.ref_bits = binarize(self.bae, adapted[ref])
        self.beta = fit_beta(self.ref_bits, items.speaker.to_numpy()[ref])
        self.enc_bits_rate = float(binarize(self.bae, x).mean())

    def adapter(self, emb_pop, tau):
        kind = "centre" if self.adapt else "none"
        return Adapter(kind, self.train, tau).fit(emb_pop if len(emb_pop) else None)


def balr_scores(system, spec, sh, items, emb, pop, rows, tau):
    """Raw beta LLR matrix of `rows` and the cosine matrix of the embeddings it starts from."""
    speech = items.speech.to_numpy()
    if system is None:  # shipped BAE
        x = emb[rows]
        bits = binarize(sh.bae, x)
        pop_bits = binarize(sh.bae, emb[pop]) if len(pop) else np.zeros((0, 512))
        beta = sh.beta
        alpha = sh.beta.alpha_
    else:
        ad = system.adapter(emb[pop], tau)
        x = ad.transform(emb[rows])
        bits = binarize(system.bae, x)
        pop_bits = binarize(system.bae, ad.transform(emb[pop])) if len(pop) else np.zeros((0, 512))
        beta = system.beta
        alpha = system.beta.alpha_
    typ = spec.get("typ")
    if typ is not None:
        beta = beta_from_alpha(adapted_alpha(alpha, pop_bits, typ))
    if spec.get("betapop"):
        beta = fit_beta(pop_bits, items.speaker.to_numpy()[pop])
    s = beta_matrix(beta, bits)
    if spec.get("norm"):
        cs = beta_matrix(beta, bits, pop_bits)
        top = None if spec["norm"] == "s" else max(5, len(pop) // 5)
        s = snorm(s, cs, cs, top)
    return s, cosine(x), speech[rows], bits


def run_balr(args, log, items, emb, train, sh, ks, seeds, out_rows):
    systems = {None: None}
    log("  training BAEs (hook i) ...")
    systems["baeC"] = BAESystem(items, emb, train, adapt=True)
    systems["bae0"] = BAESystem(items, emb, train, adapt=False)
    for key in ("baeC", "bae0"):
        s = systems[key]
        log(f"  {key}: trained in {s.seconds:.0f} s, active bits enc {s.enc_bits_rate:.3f}, "
            f"ref {s.ref_bits.mean():.3f}")  # fmt: skip
    methods = {
        "ship": dict(system=None, cal="ship"),
        "typ:0/ship": dict(system=None, typ=0.0, cal="ship"),
        "typ:10/ship": dict(system=None, typ=10.0, cal="ship"),
        "typ:30/ship": dict(system=None, typ=30.0, cal="ship"),
        "typ:100/ship": dict(system=None, typ=100.0, cal="ship"),
        "typ:30/refit": dict(system=None, typ=30.0, cal="refit"),
        "typ:100/refit": dict(system=None, typ=100.0, cal="refit"),
        "betapop/ship": dict(system=None, betapop=True, cal="ship"),
        "snorm/refit": dict(system=None, norm="s", cal="refit", method="logistic"),
        "bae0": dict(system="bae0", cal="refit"),
        "typ:30/refit cal20": dict(system=None, typ=30.0, cal="refit", cal_k=20),
        "baeC:10": dict(system="baeC", cal="refit", tau=10.0),
        "baeC:30": dict(system="baeC", cal="refit", tau=30.0),
        "baeC:100": dict(system="baeC", cal="refit", tau=100.0),
        "baeC:30+typ:30": dict(system="baeC", typ=30.0, cal="refit", tau=30.0),
        "baeC:30+typ:100": dict(system="baeC", typ=100.0, cal="refit", tau=30.0),
        "baeC:30 cal20": dict(system="baeC", cal="refit", tau=30.0, cal_k=20),
        "baeC:30+typ:30 cal20": dict(system="baeC", typ=30.0, cal="refit", tau=30.0, cal_k=20),
    }
    core = ("ship", "typ:10/ship", "typ:30/ship", "typ:30/refit", "typ:30/refit cal20", "bae0",
            "baeC:30", "baeC:30+typ:30", "baeC:30 cal20", "baeC:30+typ:30 cal20")  # fmt: skip
    for k in ks:
        names = list(methods) if k in (5, 20, "half") else list(core)
        draws = [0, 1] if k == "half" else list(range(seeds))
        for seed in draws:
            t0 = time.perf_counter()
            cals = {}
            for ck in (k, 20):
                cals[ck] = {}
                for corpus in FITTED:
                    rows = select(items, corpus, "cal")
                    a, b, y = pairs_of(items, rows)
                    cals[ck][corpus] = (cal_population(items, corpus, ck, seed), rows, a, b, y)
            tests = {}
            for corpus in FITTED:
                for variant in VARIANTS:
                    index = select(items, corpus, "test", variant)
                    pop, rows = population(items, index, k, seed)
                    a, b, y = pairs_of(items, rows)
                    tests[(corpus, variant)] = (pop, rows, a, b, y)
            for name in names:
                spec = methods[name]
                tau_test = spec.get("tau", args.tau_bae)
                cal = cals[spec.get("cal_k", k)]
                system = systems[spec["system"]]
                method = spec.get("method", "qmf")
                if spec["cal"] == "ship":
                    calib = sh.cal
                else:
                    sc, yc, gc, dc = [], [], [], []
                    for corpus, (pop, rows, a, b, y) in cal.items():
                        s, _, sp, _ = balr_scores(system, spec, sh, items, emb, pop, rows, tau_test)
                        sc.append(s[a, b])
                        yc.append(y)
                        gc.append(np.full(len(y), corpus))
                        dc.append(np.stack([sp[a], sp[b]], 1))
                    calib = fit_cal(method, np.concatenate(sc), np.concatenate(yc),
                                    np.concatenate(gc), np.concatenate(dc))  # fmt: skip
                for (corpus, variant), (pop, rows, a, b, y) in tests.items():
                    s, c, sp, bits = balr_scores(system, spec, sh, items, emb, pop, rows, tau_test)
                    llr = calib.transform(s[a, b], np.stack([sp[a], sp[b]], 1))
                    m = metrics(llr, y)
                    out_rows.append(dict(system="balr", method=name, corpus=corpus,
                                         variant=variant, k=str(k), seed=seed, n_pop=len(pop),
                                         n_pop_spk=items.speaker.iloc[pop].nunique(),
                                         cos_eer=raw_eer(c[a, b], y), bits=float(bits.mean()),
                                         **m))  # fmt: skip
            log(f"  balr k={k} seed={seed}: {len(names)} methods, {time.perf_counter() - t0:.0f} s")


# ------------------------------------------------------------------------------ tables
def tables(log, df, system):
    sets = [(c, v) for c in FITTED for v in VARIANTS]
    head = " ".join(f"{SHORT[c]}-{v[:4]:>4s}" for c, v in sets)
    d = df[df.system == system]
    g = d.groupby(["method", "k", "corpus", "variant"]).mean(numeric_only=True)
    for k in [
        k for k in ("0", "2", "3", "5", "10", "20", "half", "5x1", "10x1", "20x1") if k in set(d.k)
    ]:
        log(f"\n## {system}: K = {k} (mean over draws); population recordings per set: "
            + " ".join(f"{g.loc[(d.method.iloc[0], k, c, v), 'n_pop']:.0f}" for c, v in sets))  # fmt: skip
        log(f"{'metric':8s} {'method':22s} {head}")
        for metric, f in (("cllr", "{:7.3f}"), ("eer", "{:7.2f}"), ("cos_eer", "{:7.2f}"),
                          ("non100", "{:7.2f}"), ("tar100", "{:7.2f}")):  # fmt: skip
            for method in sorted(set(d.method[d.k == k]), key=list(dict.fromkeys(d.method)).index):
                vals = [g.loc[(method, k, c, v), metric] if (method, k, c, v) in g.index else np.nan
                        for c, v in sets]  # fmt: skip
                log(f"{metric:8s} {method:22s} " + " ".join(f.format(x) for x in vals))
            log("")


def main():
    ap = base_args(__doc__)
    ap.add_argument("--part", choices=("cosine", "balr"), default="cosine")
    ap.add_argument("--ks", nargs="+", default=["2", "3", "5", "10", "20", "half", "5x1", "20x1"])
    ap.add_argument(
        "--tau-bae", type=float, default=30.0, help="default test-time shrinkage of hook (i)"
    )
    ap.add_argument("--tables-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    log = Tee(Path(__file__).with_name(f"r08_population_{args.part}.log"))
    out = args.cache / "r08" / f"population_{args.part}.csv"
    if not args.tables_only:
        items, emb = load_data(args.cache)
        train = TrainStats(items, emb)
        sh = Shipped()
        ks = [parse_k(k) for k in args.ks]
        log(f"# r08_population ({args.part}); settings {args.ks}, {args.seeds} draws")
        rows: list[dict] = []
        if args.part == "cosine":
            run_cosine(args, log, items, emb, train, sh, ks, args.seeds, rows)
        else:
            run_balr(args, log, items, emb, train, sh, ks, args.seeds, rows)
        pd.DataFrame(rows).to_csv(out, index=False)
    df = pd.read_csv(out, dtype={"k": str})
    log(
        "Cells: mean over draws (3 seeded draws; half: both halves). Sets: test parts, original "
        "and channel variants; SO/CV are lossy Opus; LS same-speaker trials are segments of one utterance."
    )
    tables(log, df, args.part)
    log(f"done in {log.elapsed()}")


if __name__ == "__main__":
    main()
