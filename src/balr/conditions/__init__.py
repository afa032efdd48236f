"""The conditions a calibration was fitted in, and whether a trial lies inside them.

An LR is only as good as its calibration's relevance to the case (Morrison, "Tutorial on
logistic-regression calibration and fusion", Science & Justice 2013). `ConditionsDescription`
is fitted with a calibration on its calibration recordings and describes them by

(a) the range of the net speech seconds of the calibration trials' sides (each side's total,
    as the calibration uses them), the [0.5, 99.5] % percentiles;
(b) their similarity to the calibration population: for each recording, the mean cosine of
    its `neighbours` (10) nearest calibration recordings of other speakers (a reference
    identical to the recording is itself and skipped); the threshold is the
    `similarity_percentile` (2 %) of these values (a k-nearest-neighbour novelty score,
    Breunig et al. / Ramaswamy et al., SIGMOD 2000), taken within each corpus and the lowest
    kept when corpus labels are given (`ConditionsDescription.similarity_threshold`).

A trial is in conditions iff each side's net speech is known and not below the range and
every recording passes (b). Speech above the range is only a note: on held-out long
(9-15 s) concatenations strongly misleading LRs were 0.07-0.61 % of trials, as on ordinary
in-domain trials (~0.1 %), while the former rule warned on 87-100 % of them
(recipes/research/r08_warning.log). The vectors are those the scorer scores (BA vectors for
the BA-LR scorers, embeddings for the cosine of embeddings): on BA vectors of the issue-13
research cache the rule with the speech range flagged 4-9 % of in-domain trials and 29-71 %
of trials from a corpus left out of the calibration, against 3-13 % and 7-78 % on the GE2E
embeddings (docs/scoring.md).

Files: the description is the `conditions` record of calibration.json (plain JSON), its
reference vectors a float16 safetensors file beside it (`<stem>.conditions.safetensors`);
`balr.calibration.CalibrationBundle` writes calibration.json with both of its parts.

Modules: `description` (the `ConditionsDescription` estimator and its files), `trials`
(per-recording and per-trial results, the comparison check, the speech findings and
the message numbers), `jobs` (descriptions of and
checks on the recordings of a dataset, for `score calibrate` / `score test`).
"""

from balr.conditions.description import (
    CHUNK,
    DEFAULT_SIMILARITY_PERCENTILE,
    RECORD_FIELDS,
    SELF_COSINE,
    VECTOR_KINDS,
    ConditionsDescription,
    description_vectors,
    read_reference_vectors,
    sidecar_path,
)
from balr.conditions.jobs import check_trial_conditions, describe_recordings, recording_groups
from balr.conditions.trials import (
    LONGER_SPEECH,
    NO_DESCRIPTION,
    UNKNOWN_SPEECH,
    RecordingConditions,
    TrialConditions,
    apart,
    check_comparison,
    speech_findings,
    trial_conditions,
)

__all__ = [
    "CHUNK",
    "DEFAULT_SIMILARITY_PERCENTILE",
    "LONGER_SPEECH",
    "NO_DESCRIPTION",
    "RECORD_FIELDS",
    "UNKNOWN_SPEECH",
    "SELF_COSINE",
    "VECTOR_KINDS",
    "ConditionsDescription",
    "RecordingConditions",
    "TrialConditions",
    "apart",
    "check_comparison",
    "check_trial_conditions",
    "describe_recordings",
    "description_vectors",
    "read_reference_vectors",
    "recording_groups",
    "sidecar_path",
    "speech_findings",
    "trial_conditions",
]
