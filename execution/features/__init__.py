"""Features of the adaptive execution algorithm: one implementation for training, backtests
and live sessions (docs/FEATURES.md). Pure: numpy, no Django."""

from execution.features.spec import (
    FEATURES,
    INDEX,
    N_FEATURES,
    NAMES,
    FeatureSpec,
    Normalised,
    TrainingRange,
    normalise,
)
from execution.features.state import (
    ContextInputs,
    FeatureState,
    StepInputs,
    iter_record,
    replay,
)

__all__ = [
    "FEATURES",
    "INDEX",
    "NAMES",
    "N_FEATURES",
    "ContextInputs",
    "FeatureSpec",
    "FeatureState",
    "Normalised",
    "StepInputs",
    "TrainingRange",
    "iter_record",
    "normalise",
    "replay",
]
