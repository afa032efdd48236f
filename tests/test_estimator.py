"""One estimator contract for every fitted stage: parameters from the constructor, one
`NotFittedError`, `save(path) -> Path` and `load(path)`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.calibration import CALIBRATORS, Calibrator, make_calibrator
from balr.conditions import ConditionsDescription
from balr.doublemha.config import ModelSettings
from balr.doublemha.model import SpeakerClassifier
from balr.errors import ModelError
from balr.estimator import Estimator, NotFittedError
from balr.population import PopulationAdaptation
from balr.scoring import SCORERS, make_scorer

TINY = dict(front_end="VGG3L", kernel_size=8, heads_number=2, embedding_size=8)


def test_every_fitted_stage_is_an_estimator():
    stages = [*SCORERS.values(), *CALIBRATORS.values(), ConditionsDescription]
    stages += [BinaryAttributeEncoder, SpeakerClassifier, PopulationAdaptation]
    assert all(issubclass(stage, Estimator) for stage in stages)
    assert issubclass(NotFittedError, ModelError)


def test_parameters_come_from_the_constructor():
    assert make_calibrator("pav", bounded=False, description="x").get_params() == {
        "bounded": False,
        "description": "x",
    }
    assert ConditionsDescription(neighbours=4).get_params() == {
        "neighbours": 4,
        "similarity_percentile": 2.0,
        "speech_percentiles": (0.5, 99.5),
    }
    encoder = BinaryAttributeEncoder(32, 8)
    assert encoder.get_params() == {"input_dim": 32, "latent_dim": 8, "ste_gradient": "clip"}
    assert make_scorer("beta", tol=1e-5).get_params() == {
        "n_iterations": 1000,
        "tol": 1e-5,
        "min_alpha": 1e-6,
        "prior": "ml",
    }


@pytest.mark.parametrize(
    ("stage", "use"),
    [
        (lambda: make_scorer("beta"), lambda s: s.score(np.zeros((1, 4)), np.zeros((1, 4)))),
        (lambda: make_calibrator("qmf"), lambda c: c.transform(np.zeros(3))),
        (ConditionsDescription, lambda d: d.similarity(np.zeros((2, 4)))),
        (PopulationAdaptation, lambda p: p.adapted_alpha(np.ones((4, 2)))),
    ],
)
def test_unfitted_use_is_one_not_fitted_error(stage, use):
    estimator = stage()
    assert not estimator.is_fitted
    with pytest.raises(NotFittedError, match="is not fitted: call fit"):
        use(estimator)
    with pytest.raises(NotFittedError):
        estimator.check_fitted()


def test_save_returns_the_path_and_load_reads_it_back(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.r_[[1] * 50, [0] * 150]
    scores = rng.normal(2.0 * labels, 1.0)
    calibrator = make_calibrator("logistic").fit(scores, labels)
    path = calibrator.save(tmp_path / "calibration.json")
    assert path == tmp_path / "calibration.json"
    assert Calibrator.load(path).transform(scores).tolist() == calibrator.transform(scores).tolist()

    vectors = rng.normal(size=(20, 6))
    speakers = np.repeat(["a", "b", "c", "d"], 5)
    description = ConditionsDescription(neighbours=3).fit(vectors, rng.uniform(1, 9, 20), speakers)
    path = description.save(tmp_path / "conditions.json")
    loaded = ConditionsDescription.load(path)
    assert loaded.similarity(vectors).tolist() == description.similarity(vectors).tolist()

    encoder = BinaryAttributeEncoder(6, 4).eval()
    path = encoder.save(tmp_path / "bae.safetensors")
    assert path == tmp_path / "bae.safetensors"
    again = BinaryAttributeEncoder.load(path)
    np.testing.assert_array_equal(again.binarize(vectors), encoder.binarize(vectors))

    model = SpeakerClassifier(ModelSettings(num_spkrs=3, **TINY)).eval()
    path = model.save(tmp_path / "model.pt")
    assert path == tmp_path / "model.pt" and path.is_file()
    feats = torch.from_numpy(rng.normal(size=(2, 60, 80)).astype(np.float32))
    with torch.no_grad():
        expected = model.embed(feats)
        assert torch.equal(SpeakerClassifier.load(path).embed(feats), expected)
