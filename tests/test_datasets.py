import numpy as np
import pytest

from backprop_core import datasets


@pytest.mark.parametrize("name,n_classes", [("moons", 2), ("circles", 2), ("spirals", 3), ("blobs", 3)])
def test_generators_split_and_label(name, n_classes):
    data = datasets.DATASETS[name](np.random.default_rng(0), n_samples=300)
    assert data.n_classes == n_classes
    assert len(data.X_train) + len(data.X_val) == 300 and len(data.X_val) == 75
    assert set(np.unique(data.y_train)) == set(range(n_classes))
    again = datasets.DATASETS[name](np.random.default_rng(0), n_samples=300)
    assert np.array_equal(data.X_train, again.X_train)


def test_target_encoding():
    data = datasets.spirals(np.random.default_rng(0), n_samples=90)
    Y, Yv = data.targets(3)
    assert Y.shape == (len(data.X_train), 3) and np.all(Y.sum(axis=1) == 1)
    assert np.array_equal(Y.argmax(axis=1), data.y_train)
    with pytest.raises(ValueError, match="class label 2, outside the output width 2"):
        data.targets(2)
    with pytest.raises(ValueError, match="3 classes; one output unit holds only 2"):
        data.targets(1)
    binary = datasets.xor()
    assert binary.n_outputs() == 1 and binary.n_outputs(one_hot=True) == 2
    assert binary.targets(1)[0].ravel().tolist() == [0, 1, 1, 0]


def test_teacher_targets_are_a_deterministic_sigmoid_network():
    data = datasets.teacher(np.random.default_rng(0), n_samples=200, n_features=3, hidden_sizes=(5, 5))
    assert data.n_classes is None and data.y_train.shape == (150, 1)
    assert np.all((data.y_train > 0) & (data.y_train < 1))  # a sigmoid output
    again = datasets.teacher(np.random.default_rng(0), n_samples=200, n_features=3, hidden_sizes=(5, 5))
    assert np.array_equal(data.y_train, again.y_train)


def test_inline_checks_its_rows():
    data = datasets.inline(X=[[0.05, 0.1]], y=[[0.01, 0.99]])
    assert data.X_train.shape == (1, 2) and data.y_train.shape == (1, 2) and np.array_equal(data.X_val, data.X_train)
    with pytest.raises(ValueError, match=r"X: has rows of lengths \[1, 2\]"):
        datasets.inline(X=[[1.0, 2.0], [3.0]], y=[[1.0], [0.0]])
    with pytest.raises(ValueError, match="X: contains NaN"):
        datasets.inline(X=[[1.0, float("nan")]], y=[[1.0]])
    with pytest.raises(ValueError, match="y: has 1 rows, X has 2"):
        datasets.inline(X=[[1.0], [2.0]], y=[[1.0]])
    with pytest.raises(ValueError, match="must be integer class labels"):
        datasets.inline(X=[[1.0], [2.0]], y=[0.5, 1], n_classes=2)


def test_standardize_uses_training_statistics():
    Xtr = np.array([[1.0, 5.0], [3.0, 5.0]])
    Xva = np.array([[2.0, 6.0]])
    a, b = datasets.standardize(Xtr, Xva)
    assert a.tolist() == [[-1.0, 0.0], [1.0, 0.0]] and b.tolist() == [[0.0, 1.0]]
