"""scikit-learn estimator around the review's classifiers: :class:`TimeSeriesClassifier`."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from sciprob.learning.tsc.classifiers import MODEL_NAMES, fit_classifier
from sciprob.learning.tsc.data import znormalize
from sciprob.runtime import isolated_rng, resolve_device


class TimeSeriesClassifier(ClassifierMixin, BaseEstimator):
    """Deep time-series classifier of the TSC review with scikit-learn's API.

    Parameters
    ----------
    model : str, default="fcn"
        One of ``mlp, fcn, resnet, encoder, mcnn, tlenet, mcdcnn, timecnn,
        twiesn, inception, inceptiontime``.
    epochs : int or None, default=None
        Training epochs; ``None`` uses the review's (e.g. 2000 for FCN).
    batch_size : int or None, default=None
        Mini-batch size; ``None`` uses the review's rule for the model.
    normalize : bool or "auto", default="auto"
        z-normalise every series (each channel over its own length). ``"auto"``
        follows the review: univariate series are normalised, multivariate
        ones are left as they are (dl-4-tsc's MTS archive is not normalised).
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where to train and predict.
    random_state : int or None, default=None
        Seed of the initialisation, shuffling, splits and reservoirs; the
        global torch RNG is left untouched when set.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Second dimension of the training ``X`` (length for 2-D input, channels for 3-D).
    input_shape_ : tuple of int
        ``(channels, length)`` of the training series.
    fitted_ : FittedClassifier or None
        The trained network (``None`` when the training set has one class).
    history_ : dict of str to list of float
        Training curves.

    Notes
    -----
    ``X`` is ``(n, channels, length)``; a 2-D ``X`` of shape ``(n, length)`` is
    read as univariate series, which lets scikit-learn's common checks run.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(20, 1, 32)); y = np.array(["a", "b"] * 10)
    >>> clf = TimeSeriesClassifier("fcn", epochs=2, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        model: str = "fcn",
        epochs: int | None = None,
        batch_size: int | None = None,
        normalize: bool | str = "auto",
        device: str = "cpu",
        random_state: int | None = None,
    ) -> None:
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.normalize = normalize
        self.device = device
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    def _check_params(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"`model` must be one of {list(MODEL_NAMES)}, got {self.model!r}")
        if self.normalize not in (True, False, "auto"):
            raise ValueError(f"`normalize` must be True, False or 'auto', got {self.normalize!r}")
        for key in ("epochs", "batch_size"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"`{key}` must be a positive integer or None, got {value!r}")

    def _series(self, X, reset: bool) -> np.ndarray:
        X = validate_data(self, X, reset=reset, allow_nd=True, dtype=np.float64, ensure_min_features=1)
        if X.ndim == 2:
            X = X[:, None, :]
        if X.ndim != 3:
            raise ValueError(f"`X` must have shape (n, length) or (n, channels, length), got {X.shape}")
        if reset:
            self.input_shape_ = X.shape[1:]
        elif X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"`X` has series of shape {X.shape[1:]}, the classifier was fitted on {self.input_shape_}; "
                "resample with TimeSeriesData.to_array(length=...)"
            )
        norm = X.shape[1] == 1 if self.normalize == "auto" else bool(self.normalize)
        return (znormalize(X) if norm else X).astype(np.float32)

    def fit(self, X, y) -> TimeSeriesClassifier:
        """Train on ``X`` of shape (n, channels, length) or (n, length) with labels ``y`` (n,).

        Returns
        -------
        self
        """
        self._check_params()
        device = resolve_device(self.device)
        Xs = self._series(X, reset=True)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if len(y) != len(Xs):
            raise ValueError(f"`X` has {len(Xs)} series but `y` has {len(y)} labels")
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        self.fitted_, self.history_ = None, {}
        if len(self.classes_) == 1:
            return self
        codes = encoder.transform(y)
        rng = np.random.default_rng(self.random_state)
        # network initialisation draws from torch's global generator: seed it for this fit only
        with isolated_rng(int(rng.integers(2**63))):
            self.fitted_ = fit_classifier(
                self.model,
                Xs,
                codes,
                len(self.classes_),
                epochs=self.epochs,
                batch_size=self.batch_size,
                device=device,
                rng=rng,
                description=f"fit {self.model}",
            )
        self.history_ = self.fitted_.history
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, ndarray of shape (n, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self, "classes_")
        Xs = self._series(X, reset=False)
        if self.fitted_ is None:
            return np.ones((len(Xs), 1))
        return self.fitted_.predict_proba(Xs, resolve_device(self.device))

    def predict(self, X) -> np.ndarray:
        """Predicted labels, ndarray of shape (n,)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
