"""The DoubleMHA speaker-embedding extractor, trainable and explainable, in one package.

India, Safari and Hernando, "Double Multi-Head Attention for Speaker Verification", ICASSP
2021 (arXiv 2007.13199). Option names, defaults and list formats follow the authors'
reference implementation (github.com/miquelindia90/DoubleAttentionSpeakerVerification), so
its command lines and files work here.

Modules, in the order data flows through them:

- `features`: the log-mel front-end and its cached `.npy` feature files;
- `data`: list formats and datasets -> training items, random windows, validation pairs;
- `frontends`, `pooling`, `heads`, `model`: VGG CNN -> attention pooling -> embedding ->
  AM-softmax (`SpeakerClassifier`, with `save(path)` / `SpeakerClassifier.load(path)`);
- `config`: the architecture and training settings (defaults written once);
- `checkpoint`: checkpoint files read without pickle;
- `reference`: the reference's `.chkpt` / `_config.pkl` files, read with allowlists and
  mapped to balr's settings and module names;
- `trainer`: `DoubleMHATrainer(config, out_dir, device).fit(train, valid)`;
- `inference`: audio -> embeddings and attention (the one path used by `balr extractor
  embed` and `balr extract embeddings.model=doublemha`);
- `plots`: the attention view over the spectrogram.
"""

from balr.doublemha.config import ModelSettings, TrainConfig
from balr.doublemha.inference import embed_file, embed_waves, file_alignment
from balr.doublemha.model import SpeakerClassifier

__all__ = [
    "ModelSettings",
    "SpeakerClassifier",
    "TrainConfig",
    "embed_file",
    "embed_waves",
    "file_alignment",
]
