"""Neural ODEs for two-body orbital dynamics: data, models, training and metrics.

Entry points set the process-wide options once: `EQX_ON_ERROR=nan` in the environment before
this package is imported (equinox reads it at import; with runtime errors as NaN, JAX's
persistent compilation cache keeps the training step, and the training loop catches non-finite
losses anyway), then `configure_jax(x64, cache_dir)`.
"""

from ._config import canonical_config as canonical_config
from ._config import check_config as check_config
from ._config import configure_from_config as configure_from_config
from ._config import ensemble_key as ensemble_key
from ._config import phases_from_config as phases_from_config
from ._config import spec_from_config as spec_from_config
from ._config import test_set_from_config as test_set_from_config
from ._config import train_many_from_config as train_many_from_config
from ._config import train_options as train_options
from ._curriculum import Phase as Phase
from ._curriculum import phases_from_strategy as phases_from_strategy
from ._datasets import OrbitDataset as OrbitDataset
from ._datasets import dataset_name as dataset_name
from ._datasets import dataset_path as dataset_path
from ._datasets import family_ranges as family_ranges
from ._datasets import load_or_generate as load_or_generate
from ._datasets import train_and_test_sets as train_and_test_sets
from ._features import FEATURE_LAYERS as FEATURE_LAYERS
from ._figures import loglog_figure as loglog_figure
from ._figures import per_orbit_figure as per_orbit_figure
from ._figures import test_set_figure as test_set_figure
from ._heads import HEAD_ALIASES as HEAD_ALIASES
from ._heads import OUTPUT_HEADS as OUTPUT_HEADS
from ._io import load_model as load_model
from ._io import save_model as save_model
from ._losses import LOSSES as LOSSES
from ._metrics import critical_radius as critical_radius
from ._metrics import distribution_stats as distribution_stats
from ._metrics import evaluate as evaluate
from ._metrics import true_acceleration as true_acceleration
from ._model import ACTIVATIONS as ACTIVATIONS
from ._model import ModelSpec as ModelSpec
from ._model import NeuralODE as NeuralODE
from ._orbits import MU_EARTH as MU_EARTH
from ._orbits import POINTS_PER_ORBIT as POINTS_PER_ORBIT
from ._orbits import R_EARTH as R_EARTH
from ._orbits import ElementRanges as ElementRanges
from ._orbits import angular_momentum as angular_momentum
from ._orbits import generate_orbits as generate_orbits
from ._orbits import solve_kepler as solve_kepler
from ._orbits import specific_energy as specific_energy
from ._registry import FieldError as FieldError
from ._replay import solve_batch as solve_batch
from ._report import describe as describe
from ._report import evaluation as evaluation
from ._report import report as report
from ._report import scalars as scalars
from ._segments import Segments as Segments
from ._segments import check_segment_length as check_segment_length
from ._segments import segment as segment
from ._setup import configure_jax as configure_jax
from ._setup import device_used as device_used
from ._train import HEALTH as HEALTH
from ._train import CheckpointMismatch as CheckpointMismatch
from ._train import StallRule as StallRule
from ._train import StallWatch as StallWatch
from ._train import TrainResult as TrainResult
from ._train import make_step as make_step
from ._train import member as member
from ._train import optimizer as optimizer
from ._train import stack as stack
from ._train import tolerance_at as tolerance_at
from ._train import train as train
from ._train import train_ensemble as train_ensemble
from ._units import CanonicalUnits as CanonicalUnits

__all__ = [
    "ACTIVATIONS",
    "CanonicalUnits",
    "CheckpointMismatch",
    "ElementRanges",
    "FEATURE_LAYERS",
    "FieldError",
    "HEAD_ALIASES",
    "HEALTH",
    "LOSSES",
    "MU_EARTH",
    "ModelSpec",
    "NeuralODE",
    "OUTPUT_HEADS",
    "OrbitDataset",
    "POINTS_PER_ORBIT",
    "Phase",
    "R_EARTH",
    "Segments",
    "StallRule",
    "StallWatch",
    "TrainResult",
    "angular_momentum",
    "canonical_config",
    "check_config",
    "check_segment_length",
    "configure_from_config",
    "configure_jax",
    "critical_radius",
    "dataset_name",
    "dataset_path",
    "describe",
    "device_used",
    "distribution_stats",
    "ensemble_key",
    "evaluate",
    "evaluation",
    "family_ranges",
    "generate_orbits",
    "load_model",
    "load_or_generate",
    "loglog_figure",
    "make_step",
    "member",
    "optimizer",
    "per_orbit_figure",
    "phases_from_config",
    "phases_from_strategy",
    "report",
    "save_model",
    "scalars",
    "segment",
    "solve_batch",
    "solve_kepler",
    "spec_from_config",
    "specific_energy",
    "stack",
    "test_set_figure",
    "test_set_from_config",
    "tolerance_at",
    "train",
    "train_and_test_sets",
    "train_ensemble",
    "train_many_from_config",
    "train_options",
    "true_acceleration",
]
