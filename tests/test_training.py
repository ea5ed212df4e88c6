"""The fit loop: step semantics, logging, diagnostics, divergence, determinism."""

import numpy as np
import pytest

from backprop_core import (
    ACTIVATIONS, DIAGNOSTICS, LOSSES, Callback, Network, StopTraining, Trainer, datasets, fit, get_activation,
    get_initializer, get_loss, get_optimizer, layer_key,
)


def problem(seed=0, sizes=(2, 16, 16, 1), activation="tanh"):
    rng = np.random.default_rng(seed)
    data = datasets.moons(rng, n_samples=200)
    net = Network(sizes, activation, "sigmoid").initialize(get_initializer("glorot_uniform"), rng)
    Y, Yv = data.targets(1)
    return net, data, Y, Yv, rng


def test_step_zero_reports_the_initial_weights_and_their_gradients():
    net, data, Y, Yv, rng = problem()
    initial = net.copy()
    loss = get_loss("bce")
    expected_loss = initial.loss_and_grad(data.X_train, Y, loss)
    result = fit(net, loss, get_optimizer("sgd", lr=0.1), data.X_train, Y,
                 trainer=Trainer(epochs=3), rng=rng, validation=(data.X_val, Yv))
    first = result.history[0]
    assert first["step"] == 0 and first["train/loss"] == expected_loss
    for k in range(3):
        assert first[layer_key("grad_norm", k + 1, 3)] == pytest.approx(np.linalg.norm(initial.dL_dW[k]), rel=1e-12)
        assert first[layer_key("bias_grad_norm", k + 1, 3)] == pytest.approx(np.linalg.norm(initial.dL_db[k]), rel=1e-12)
        assert first[layer_key("weight_norm", k + 1, 3)] == pytest.approx(np.linalg.norm(initial.weights[k]), rel=1e-12)
        # sgd: the update is -lr dL/dW
        assert first[layer_key("update_ratio", k + 1, 3)] == pytest.approx(
            0.1 * np.linalg.norm(initial.dL_dW[k]) / np.linalg.norm(initial.weights[k]), rel=1e-12)
    assert first["val/loss"] == pytest.approx(initial.loss(data.X_val, Yv, loss), rel=1e-12)
    # step 1's loss is that of the weights after exactly one update
    initial.trainable[...] -= 0.1 * initial.trainable_grads
    assert result.history[1]["train/loss"] == pytest.approx(initial.loss(data.X_train, Y, loss), rel=1e-12)


def test_logging_schedule_keeps_first_and_last_step():
    net, data, Y, _, rng = problem()
    trainer = Trainer(epochs=10, batch_size=32, log_every=8)  # 150 samples -> 5 batches an epoch
    result = fit(net, get_loss("bce"), get_optimizer("sgd", lr=0.1), data.X_train, Y, trainer=trainer, rng=rng)
    steps = [r["step"] for r in result.history]
    assert result.steps == 50 == trainer.total_steps(150)
    assert steps == [0, 8, 16, 24, 32, 40, 48, 49, 50]  # every 8th update, the last one, the closing record
    assert [r["epoch"] for r in result.history][-2:] == [9, 10]  # the closing record: 10 epochs done


def test_the_closing_record_is_the_trained_weights_on_the_whole_training_set():
    net, data, Y, Yv, rng = problem()
    result = fit(net, get_loss("bce"), get_optimizer("sgd", lr=0.1), data.X_train, Y,
                 trainer=Trainer(epochs=4, batch_size=40, log_every=3), rng=rng, validation=(data.X_val, Yv),
                 classification=True)
    closing = result.history[len(result.history) - 1]
    assert closing["step"] == result.steps == 16 and closing["epoch"] == 4
    # an independent evaluation of the trained weights: a fresh network holding them
    trained = net.copy()
    expected = trained.loss_and_grad(data.X_train, Y, get_loss("bce"))
    assert closing["train/loss"] == pytest.approx(expected, rel=1e-12)
    assert closing["grad_norm/global"] == pytest.approx(np.linalg.norm(trained.trainable_grads), rel=1e-12)
    for k in range(3):
        assert closing[layer_key("grad_norm", k + 1, 3)] == pytest.approx(np.linalg.norm(trained.dL_dW[k]), rel=1e-12)
    assert "update_ratio/update_ratio_l01" not in closing  # no update follows it
    assert closing["val/loss"] == pytest.approx(trained.loss(data.X_val, Yv, get_loss("bce")), rel=1e-12)
    assert result.final == {k: closing[k] for k in ("train/loss", "train/accuracy", "val/loss", "val/accuracy")}


def test_history_keeps_columns_compactly_or_only_its_ends():
    net, data, Y, _, rng = problem()
    full = fit(net.copy(), get_loss("bce"), get_optimizer("sgd", lr=0.1), data.X_train, Y,
               trainer=Trainer(epochs=30), rng=np.random.default_rng(1))
    ends = fit(net.copy(), get_loss("bce"), get_optimizer("sgd", lr=0.1), data.X_train, Y,
               trainer=Trainer(epochs=30), rng=np.random.default_rng(1), keep_history="ends")
    assert len(full.history) == 31 and len(ends.history) == 2
    assert ends.history[0] == full.history[0] and ends.history[1] == full.history[30]
    assert full.history.column("step").tolist() == list(range(31))
    assert np.isnan(full.history.column("update_ratio/update_ratio_l01")[-1])  # the closing record has no update


def test_max_steps_caps_the_run():
    net, data, Y, _, rng = problem()
    result = fit(net, get_loss("bce"), get_optimizer("sgd", lr=0.1), data.X_train, Y,
                 trainer=Trainer(epochs=100, batch_size=10, max_steps=23, log_every=10), rng=rng)
    assert result.steps == 23 and [r["step"] for r in result.history] == [0, 10, 20, 22, 23]


def test_diagnostics_cover_every_layer_and_name():
    net, data, Y, _, rng = problem(sizes=(2, 8, 8, 8, 1), activation="relu")
    record = fit(net, get_loss("bce"), get_optimizer("adam", lr=0.01), data.X_train, Y,
                 trainer=Trainer(epochs=1), rng=rng).history[0]
    for name in DIAGNOSTICS:
        for k in range(1, 5):
            if name == "dead_fraction" and k == 4:  # the identity output has no dead region: no key
                assert layer_key(name, k, 4) not in record
                continue
            assert np.isfinite(record[layer_key(name, k, 4)]), (name, k)
    assert 0 <= record["saturation/saturation_l01"] <= 1 and 0 <= record["dead_fraction/dead_fraction_l01"] <= record["saturation/saturation_l01"]


def test_saturation_and_dead_units_are_counted_per_activation():
    net = Network([1, 4], "identity", "relu")
    net.weights[0][...] = [[1.0, -1.0, 1.0, -1.0]]
    net.biases[0][...] = [0.0, 0.0, -10.0, 10.0]
    X = np.array([[1.0], [2.0], [3.0]])
    net.loss_and_grad(X, np.zeros((3, 4)), get_loss("mse"))
    from backprop_core import layer_diagnostics
    d = layer_diagnostics(net)
    # Z per unit: [1,2,3], [-1,-2,-3], [-9,-8,-7], [9,8,7] -> units 2 and 3 are off on every sample
    assert d["saturation"][0] == pytest.approx(6 / 12) and d["dead_fraction"][0] == pytest.approx(2 / 4)


def direct_diagnostics(net, updates):
    """Every diagnostic of the last pass, layer by layer from its definition (no shared code path)."""
    out = {name: [] for name in DIAGNOSTICS}
    for k, (W, activation) in enumerate(zip(net.weights, net.activations)):
        Z, A = (np.asarray(a, np.float64) for a in (net.cache["Z"][k], net.cache["A"][k]))
        g = np.asarray(net.dL_dW[k], np.float64)
        update = np.asarray(updates[net.weight_offsets[k]:net.weight_offsets[k] + W.size], np.float64)
        out["grad_norm"].append(np.sqrt(np.sum(g * g)))
        out["delta_norm"].append(np.linalg.norm(np.asarray(net.unit_errors[k], np.float64)))
        out["bias_grad_norm"].append(np.linalg.norm(np.asarray(net.dL_db[k], np.float64)) if net.bias_mode != "none" else np.nan)
        out["weight_norm"].append(np.linalg.norm(np.asarray(W, np.float64)))
        out["update_ratio"].append(np.linalg.norm(update) / out["weight_norm"][-1])
        out["act_mean"].append(A.mean())
        out["act_std"].append(A.std())
        saturated = activation.saturated(net.cache["Z"][k], net.cache["A"][k])
        out["saturation"].append(saturated.mean())
        out["dead_fraction"].append(saturated.all(axis=0).mean() if activation.has_dead_region else np.nan)
    return {name: np.array(values) for name, values in out.items()}


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "gelu", "identity"])
@pytest.mark.parametrize("bias", ["per_unit", "shared", "none"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hidden_derivative", ["exact", "one"])
@pytest.mark.parametrize("dot_from", [0, 10**9])  # norms by one dot per layer, or by squares and reduceat
def test_the_fused_diagnostics_equal_each_layers_definition(activation, bias, dtype, hidden_derivative, dot_from):
    """One squaring and one reduceat per flat vector, f'(Z) reused from backpropagation, buffers reused
    across batch sizes: the same numbers as each layer computed on its own, for every bias mode."""
    from backprop_core.diagnostics import LayerDiagnostics
    rng = np.random.default_rng(3)
    net = Network([3, 7, 5, 4, 2], activation, "softmax", bias=bias, dtype=dtype, hidden_derivative=hidden_derivative)
    net.initialize(get_initializer("glorot_normal"), rng)
    net.trainable[...] += rng.normal(0, 0.3, net.n_trainable).astype(dtype)  # biases too, where they are
    measure = LayerDiagnostics(net)
    measure.DOT_FROM = dot_from
    for n in (9, 4, 9):  # a batch, a smaller one (new buffers), the first size again
        X, Y = rng.normal(0, 2, (n, 3)), np.eye(2)[rng.integers(0, 2, n)]
        net.loss_and_grad(X, Y, get_loss("cross_entropy"))
        updates = rng.normal(0, 1e-3, net.n_trainable)
        expected = direct_diagnostics(net, updates)
        measured = dict(zip(DIAGNOSTICS, measure.measure(updates)))
        rtol = 1e-12 if dtype == np.float64 else 1e-5
        for name in DIAGNOSTICS:
            np.testing.assert_allclose(measured[name], expected[name], rtol=rtol, atol=1e-15, err_msg=name)


def test_layer_keys_are_zero_padded():
    assert layer_key("grad_norm", 3, 8) == "grad_norm/grad_norm_l03"
    assert layer_key("grad_norm", 3, 120) == "grad_norm/grad_norm_l003"


def test_divergence_stops_at_the_first_non_finite_step():
    rng = np.random.default_rng(0)
    net = Network([2, 32, 32, 32, 1], "relu", "identity")
    net.initialize(get_initializer("normal", std=5.0), rng)
    X = rng.normal(size=(64, 2))
    Y = rng.normal(size=(64, 1))
    with np.errstate(all="ignore"):
        result = fit(net, get_loss("mse"), get_optimizer("sgd", lr=10.0), X, Y,
                     trainer=Trainer(epochs=100, log_every=50), rng=rng)
    assert result.diverged and result.diverged_at_step < 100
    last = result.history[-1]
    assert last["step"] == result.diverged_at_step
    assert not (np.isfinite(last["train/loss"]) and np.isfinite(last["grad_norm/global"]))
    assert all(np.isfinite(r["train/loss"]) for r in result.history[:-1])
    assert result.final == {}


def test_clipping_bounds_the_applied_update():
    net, data, Y, _, rng = problem()
    result = fit(net, get_loss("bce"), get_optimizer("sgd", lr=1.0), data.X_train, Y,
                 trainer=Trainer(epochs=1, clip_grad_norm=1e-3), rng=rng)
    record = result.history[0]
    update = sum((record[layer_key("update_ratio", k, 3)] * record[layer_key("weight_norm", k, 3)]) ** 2
                 for k in (1, 2, 3)) ** 0.5
    assert record["grad_norm/global"] > 1e-3 and update <= 1e-3 * (1 + 1e-9)


def run(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    data = datasets.spirals(rng, n_samples=150)
    net = Network([2, 12, 12, 3], "tanh", "softmax", dtype=dtype).initialize(get_initializer("he_normal"), rng)
    Y, _ = data.targets(3)
    fit(net, get_loss("cross_entropy"), get_optimizer("adam", lr=0.01), data.X_train, Y,
        trainer=Trainer(epochs=100, batch_size=16, max_steps=100, log_every=50), rng=rng)
    return net.params.copy()


def test_same_seed_is_bit_identical_and_another_seed_is_not():
    assert np.array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


def test_float32_trains_in_float32():
    params = run(7, np.float32)
    assert params.dtype == np.float32
    np.testing.assert_allclose(params, run(7), rtol=0, atol=2e-3)


def test_callbacks_see_every_record_and_the_result():
    seen = []

    class Spy(Callback):
        def on_fit_start(self, net, total_steps):
            seen.append(("start", total_steps))

        def on_step(self, record):
            seen.append(("step", record["step"]))

        def on_fit_end(self, result):
            seen.append(("end", result.steps))

    net, data, Y, _, rng = problem()
    fit(net, get_loss("bce"), get_optimizer("sgd", lr=0.1), data.X_train, Y,
        trainer=Trainer(epochs=3), rng=rng, callbacks=[Spy()])
    assert seen == [("start", 3), ("step", 0), ("step", 1), ("step", 2), ("step", 3), ("end", 3)]


def test_a_callback_stops_the_run_at_a_record_which_is_kept_and_whose_update_is_not_applied():
    class StopAtFour(Callback):
        def on_step(self, record):
            if record["step"] == 4:
                raise StopTraining("judged hopeless")

    net, data, Y, _, rng = problem()
    fit(net, get_loss("bce"), get_optimizer("sgd", lr=0.1), data.X_train, Y, trainer=Trainer(epochs=4), rng=rng)
    after_four = net.trainable.copy()
    net, data, Y, _, rng = problem()
    result = fit(net, get_loss("bce"), get_optimizer("sgd", lr=0.1), data.X_train, Y, trainer=Trainer(epochs=10),
                 rng=rng, callbacks=[StopAtFour()], keep_history="all")
    assert (result.stopped, result.stopped_at_step, result.stop_reason, result.steps) == (True, 4, "judged hopeless", 4)
    assert result.history.column("step").tolist() == [0, 1, 2, 3, 4]  # the stopping record kept, no closing record
    assert not result.diverged
    np.testing.assert_array_equal(net.trainable, after_four)  # updates 0..3 applied, update 4 not


def test_library_trains_xor():
    rng = np.random.default_rng(0)
    data = datasets.xor()
    net = Network([2, 8, 1], "tanh", "sigmoid").initialize(get_initializer("glorot_uniform"), rng)
    Y, _ = data.targets(1)
    result = fit(net, get_loss("bce"), get_optimizer("sgd", lr=0.5), data.X_train, Y,
                 trainer=Trainer(epochs=2000, log_every=100), rng=rng, classification=True)
    assert result.final["train/accuracy"] == 1.0 and result.final["train/loss"] < 0.01


@pytest.mark.parametrize("factory,registry", [
    (get_activation, ACTIVATIONS), (get_loss, LOSSES), (get_initializer, None), (get_optimizer, None),
])
def test_unknown_names_list_the_valid_ones(factory, registry):
    with pytest.raises(ValueError, match=r"'nope' is unknown; valid names: .*"):
        factory("nope")


@pytest.mark.parametrize("key,value", [("epochs", 0), ("batch_size", 0), ("log_every", 0), ("max_steps", -1),
                                       ("clip_grad_norm", -1.0), ("clip_grad_value", 0.0)])
def test_trainer_rejects_out_of_range_values(key, value):
    with pytest.raises(ValueError, match=rf"^{key}={value}: must be"):
        Trainer(**{key: value})


@pytest.mark.parametrize("X,Y,validation,message", [
    ((5, 3), (5, 1), None, r"^X: has shape \(5, 3\); must be \(n, 2\): n >= 1 samples in rows, the net's input width"),
    ((5,), (5, 1), None, r"^X: has shape \(5,\); must be \(n, 2\)"),
    ((0, 2), (0, 1), None, r"^X: has shape \(0, 2\); must be \(n, 2\): n >= 1"),
    ((5, 2), (5, 2), None, r"^Y: has shape \(5, 2\); must be \(n, 1\): .* the net's output width"),
    ((5, 2), (4, 1), None, r"^Y: has 4 rows; must have as many as X, 5$"),
    ((5, 2), (5, 1), ((3, 2), (2, 1)), r"^validation Y: has 2 rows; must have as many as validation X, 3$"),
])
def test_fit_names_a_misshapen_array(X, Y, validation, message):
    """Shapes are checked once, up front, in the engine's words (not NumPy's broadcasting errors)."""
    net = Network([2, 4, 1], "tanh", "sigmoid")
    validation = None if validation is None else (np.zeros(validation[0]), np.zeros(validation[1]))
    with pytest.raises(ValueError, match=message):
        fit(net, get_loss("bce"), get_optimizer("sgd", lr=0.1), np.zeros(X), np.zeros(Y),
            rng=np.random.default_rng(0), validation=validation)


def test_softmax_needs_two_outputs_and_bce_needs_probabilities():
    with pytest.raises(ValueError, match="softmax' needs at least 2 output units, got 1"):
        get_loss("mse").check_output(get_activation("softmax"), 1)
    with pytest.raises(ValueError, match="loss 'bce' needs outputs in \\(0, 1\\).*'tanh'"):
        get_loss("bce").check_output(get_activation("tanh"), 1)


def test_history_keeps_each_records_own_keys_when_the_set_changes():
    """The history reuses the last record's column layout; a record with fewer, other or reordered keys
    must still come back exactly as it was logged (absent keys absent, not NaN)."""
    from backprop_core import History
    records = [{"step": 0, "a": 1.0, "b": 2.0}, {"step": 1, "a": 3.0}, {"step": 2, "a": 4.0, "c": 5.0},
               {"step": 3, "b": 6.0, "a": 7.0}, {"step": 4, "b": 6.0, "a": 7.0}]
    history = History()
    for record in records:
        history.append(dict(record))
    assert list(history) == records
    assert np.isnan(history.column("c")[[0, 1, 3, 4]]).all()
    ends = History("ends")
    for record in records:
        ends.append(dict(record))
    assert list(ends) == [records[0], records[-1]]
