"""Hydra `_target_` class paths of the reference BA-LR library, mapped to balr's choices.

The reference's configs name the class to build at each plug-in point (`scorer._target_=
balr.scoring.llr.MaxLLRScorer`, each loss, the trainer, the encoder, the embedding model)
and Hydra imports it. balr never imports a class named in a config: every class path the
reference's configs use (and balr's own class of each) is looked up in the table below and
becomes the balr option it means (`scorer._target_=...MaxLLRScorer` is `scorer=maxllr`); any
other path is refused with the list of accepted ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from balr.errors import ConfigError

TARGET_KEY = "_target_"

#: by config node: accepted class path -> the balr option it selects. For a group
#: (`scorer`, `embeddings.model`) the option becomes a group choice; for the others there is
#: one balr class, so a matching path is accepted and has nothing more to select.
TARGETS: dict[str, dict[str, str]] = {
    "scorer": {
        "balr.scoring.cosine.CosineSimilarityScorer": "cosine",
        "balr.scoring.llr.DNALLRScorer": "dna",
        "balr.scoring.llr.SpeechLLRScorer": "speech",
        "balr.scoring.llr.MaxLLRScorer": "maxllr",
        "balr.scoring.beta.DirichletMultinomialScorer": "beta",
        "balr.scoring.cosine.CosineScorer": "cosine",
        "balr.scoring.typicality.DNAScorer": "dna",
        "balr.scoring.typicality.SpeechScorer": "speech",
        "balr.scoring.maxllr.MaxLLRScorer": "maxllr",
        "balr.scoring.beta.BetaScorer": "beta",
    },
    "embeddings.model": {
        "balr.embeddings.wespeaker.WespeakerModel": "wespeaker",
        "balr.embeddings.wespeaker_resnet.WespeakerEncoder": "wespeaker",
        "balr.embeddings.ge2e.GE2EEncoder": "ge2e",
        "balr.embeddings.doublemha.DoubleMHAEmbedder": "doublemha",
    },
    "encoder.model": {
        "balr.binary_attributes.autoencoder.BinaryAttributeAutoEncoder": "autoencoder",
        "balr.binary_attributes.model.BinaryAttributeEncoder": "autoencoder",
    },
    "trainer": {
        "balr.binary_attributes.trainer.BinaryAttributeEncoderTrainer": "batrainer",
        "balr.binary_attributes.trainer.BAETrainer": "batrainer",
    },
    "trainer.losses.mse": {
        "balr.losses.mse_loss.MSELoss": "mse",
        "balr.binary_attributes.losses.ReconstructionMSE": "mse",
    },
    "trainer.losses.triplet": {
        "balr.losses.triplet_margin_loss.TripletMarginLoss": "triplet",
        "balr.binary_attributes.losses.CodeTripletLoss": "triplet",
    },
    "trainer.losses.arcface": {
        "balr.losses.arcface_loss.ArcFaceLoss": "arcface",
        "balr.binary_attributes.losses.CodeArcFaceLoss": "arcface",
    },
    "trainer.losses.sparsity": {
        "balr.losses.sparsity_loss.SparsityLoss": "sparsity",
        "balr.binary_attributes.losses.SparsityLoss": "sparsity",
    },
}

#: nodes whose `_target_` selects an option of a config group (`node=option` becomes
#: Hydra's `group=option`)
GROUPS = {"scorer": "scorer", "embeddings.model": "embeddings/model"}


def target_option(node: str, path: str) -> str:
    """The balr option that the class `path` means at config `node`; ConfigError naming the
    accepted paths when the node takes no `_target_` or the path is not one of them."""
    if node not in TARGETS:
        nodes = ", ".join(f"{n}.{TARGET_KEY}" for n in TARGETS)
        raise ConfigError(f"{node}.{TARGET_KEY}: balr accepts {TARGET_KEY} only on {nodes}")
    accepted = TARGETS[node]
    if path not in accepted:
        raise ConfigError(
            f"{node}.{TARGET_KEY}={path}: not a class balr knows (balr imports no class named "
            f"in a config); accepted: {', '.join(accepted)}"
        )
    return accepted[path]


def resolve_target_overrides(overrides: Sequence[str] | None) -> list[str]:
    """Overrides with every `NODE._target_=PATH` replaced by the balr option it means: a
    group choice (`scorer=maxllr`, `embeddings/model=wespeaker`) or nothing (the node has one
    class in balr). A choice that disagrees with an explicit `NODE=OPTION` is a ConfigError."""
    result: list[str] = []
    chosen: dict[str, tuple[str, str]] = {}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        node = key.lstrip("+").removesuffix(f".{TARGET_KEY}")
        if not sep or not key.endswith(f".{TARGET_KEY}"):
            result.append(item)
            continue
        option = target_option(node, value.strip().strip("'\""))
        if node in GROUPS:
            chosen[node] = (option, item)
            result.append(f"{GROUPS[node]}={option}")
    for node, (option, item) in chosen.items():
        for other in result:
            key, _, value = other.partition("=")
            if key.lstrip("+") in (node, GROUPS[node]) and value.strip() != option:
                raise ConfigError(f"'{item}' selects {node} '{option}' but '{other}' another")
    return result


#: modules whose sampler class paths `data.sampler` accepts: the reference's, balr's
SAMPLER_MODULES = ("balr.samplers.nxm_samplers", "balr.binary_attributes.samplers")


def sampler_name(path: str) -> str | None:
    """The class name of a `data.sampler` path in one of `SAMPLER_MODULES`, else None."""
    module, _, name = path.rpartition(".")
    return name if module in SAMPLER_MODULES else None
