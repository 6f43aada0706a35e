"""Deep time-series classification: the TSC review's classifiers, data readers, estimator.

Readers for the UCR/UEA ``.ts`` and ``.tsv`` files (:func:`load_ucr`), the
review's nine networks plus InceptionTime as ``torch.nn.Module`` s, training
with the review's recipes (:func:`fit_classifier`), a scikit-learn estimator
(:class:`TimeSeriesClassifier`), class activation maps and the
critical-difference comparison of classifiers over data sets.
"""

from sciprob.learning.tsc.augment import warp_and_slice, window_slices, window_warp
from sciprob.learning.tsc.cam import class_activation_map, plot_cam
from sciprob.learning.tsc.classifiers import MODEL_NAMES, FittedClassifier, fit_classifier, get_architecture
from sciprob.learning.tsc.data import (
    TimeSeriesData,
    TimeSeriesFormatError,
    available_datasets,
    equalize_length,
    load_ucr,
    read_series_file,
    read_ts,
    read_ucr_tsv,
    znormalize,
)
from sciprob.learning.tsc.estimator import TimeSeriesClassifier
from sciprob.learning.tsc.inception import InceptionModule, InceptionNetwork, InceptionTimeEnsemble
from sciprob.learning.tsc.mcnn import MCNN
from sciprob.learning.tsc.networks import FCN, MCDCNN, MLP, Encoder, ResNet, TimeCNN, TLeNet
from sciprob.learning.tsc.ranking import (
    RankComparison,
    average_ranks,
    compare_classifiers,
    holm,
    plot_critical_difference,
)
from sciprob.learning.tsc.training import RECIPES, TrainingRecipe, TrainingResult, train_network
from sciprob.learning.tsc.twiesn import TWIESN, fit_twiesn

__all__ = [
    "FCN",
    "MCDCNN",
    "MCNN",
    "MLP",
    "MODEL_NAMES",
    "RECIPES",
    "TWIESN",
    "Encoder",
    "FittedClassifier",
    "InceptionModule",
    "InceptionNetwork",
    "InceptionTimeEnsemble",
    "RankComparison",
    "ResNet",
    "TLeNet",
    "TimeCNN",
    "TimeSeriesClassifier",
    "TimeSeriesData",
    "TimeSeriesFormatError",
    "TrainingRecipe",
    "TrainingResult",
    "available_datasets",
    "average_ranks",
    "class_activation_map",
    "compare_classifiers",
    "equalize_length",
    "fit_classifier",
    "fit_twiesn",
    "get_architecture",
    "holm",
    "load_ucr",
    "plot_cam",
    "plot_critical_difference",
    "read_series_file",
    "read_ts",
    "read_ucr_tsv",
    "train_network",
    "warp_and_slice",
    "window_slices",
    "window_warp",
    "znormalize",
]
