"""Settings of the DoubleMHA extractor: the architecture and the training run.

Option names and defaults follow the authors' reference implementation (see
`balr.doublemha`), so its command lines work unchanged; the camelCase names are theirs.
`TrainConfig` inherits the architecture settings, so each default is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

from omegaconf import OmegaConf

from balr.config import compose_config, register_config
from balr.errors import ConfigError

#: `query_init` choices: balr's `randn / sqrt(size)`, or the reference's xavier-normal
QUERY_INITS = ("balr", "reference")

TRAIN_CONFIG = "extractor_train"
#: the log-mel recipe of checkpoints whose settings do not name one (balr 0.1)
LEGACY_FEATURE_RECIPE = "centred"
DATA_MODES = ("normal", "window")


@dataclass
class ModelSettings:
    """Architecture: front-end, pooling, embedding head and AM-softmax classifier."""

    front_end: str = "VGG4L"
    kernel_size: int = 1024
    embedding_size: int = 400
    heads_number: int = 32
    pooling_method: str = "DoubleMHA"
    mask_prob: float = 0.3
    scalingFactor: float = 30.0  # noqa: N815 (reference implementation's option name)
    marginFactor: float = 0.4  # noqa: N815 (reference implementation's option name)
    annealing: bool = False
    num_spkrs: int = 2
    n_mels: int = 80
    normalization: str = "cmn"
    feature_recipe: str = "reference"  # log-mel recipe (balr.doublemha.features)

    @classmethod
    def from_dict(cls, values: dict) -> ModelSettings:
        """Keep only the known keys of a (possibly larger) settings mapping. Settings saved
        before `feature_recipe` existed were trained on balr 0.1's `centred` features."""
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in values.items() if k in names}
        known.setdefault("feature_recipe", LEGACY_FEATURE_RECIPE)
        return cls(**known)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainConfig(ModelSettings):
    """`balr extractor train`: the architecture (inherited) plus the data and the schedule.

    `num_spkrs` is set from the training data. Training data: reference-format lists
    (`train_labels_path`, `valid_clients`, `valid_impostors` under the data directories) or
    dataset CSVs (`train_csv`, `valid_csv`, optional `valid_trials`).
    """

    train_labels_path: str | None = None
    valid_clients: str | None = None
    valid_impostors: str | None = None
    train_data_dir: str = "."
    valid_data_dir: str = "."
    data_mode: str = "normal"  # the reference's option (normal|window); unused there too
    train_csv: str | None = None
    valid_csv: str | None = None
    valid_trials: str | None = None
    features_dir: str | None = None
    max_valid_pairs: int = 2000
    out_dir: str | None = None
    model_name: str = "CNN"
    window_size: float = 3.5
    randomSlicing: bool = False  # noqa: N815 (reference implementation's option name)
    optimizer: str = "Adam"
    learning_rate: float = 1e-4
    weight_decay: float = 1e-3
    batch_size: int = 64
    gradientAccumulation: int = 2  # noqa: N815 (reference implementation's option name)
    max_epochs: int = 1000000
    max_steps: int = 0
    early_stopping: int = 25
    lr_patience: int = 15
    print_every: int = 1000
    requeue: bool = False
    validate_every: int = 10000
    validate_at_start: bool = False
    num_workers: int = 2
    cache_features: bool = True
    seed: int = 1234
    threads: int = 0
    device: str | None = None
    query_init: str = "balr"  # attention queries: balr's randn / sqrt(size), or "reference"

    def model_settings(self, num_speakers: int) -> ModelSettings:
        """The architecture part, for `num_speakers` training speakers."""
        return ModelSettings.from_dict({**asdict(self), "num_spkrs": num_speakers})


def train_config(overrides: Sequence[str] | None = None) -> TrainConfig:
    """The training config composed from Hydra `key=value` overrides."""
    register_config(TRAIN_CONFIG, TrainConfig)
    config = OmegaConf.to_object(compose_config(TRAIN_CONFIG, list(overrides or [])))
    if config.data_mode not in DATA_MODES:
        raise ConfigError(f"data_mode '{config.data_mode}': expected one of {DATA_MODES}")
    if config.query_init not in QUERY_INITS:
        raise ConfigError(f"query_init '{config.query_init}': expected one of {QUERY_INITS}")
    return config
