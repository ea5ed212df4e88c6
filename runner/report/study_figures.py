"""An Optuna search's figures: Optuna's own (optimisation history, parameter importances, a contour of
the two most important parameters, drawn by its matplotlib backend), and, for a search over
``init.sigma_w2``, the trials beside the critical line the mean-field theory predicts."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from backprop_core.theory import critical_sigma_w2

from ..figures.style import plt, save_figure

log = logging.getLogger("runner")
SIGMA_W2, SIGMA_B2 = "init.sigma_w2", "init.sigma_b2"


def draw_study(study, folder: Path, activation: str | None = None, sigma_b2: float | None = None) -> list[Path]:
    """The figures the study's trials allow, as PNGs in ``folder``; a figure Optuna cannot draw (too
    few completed trials) is left out with a note in the log."""
    # imported here: Optuna takes ~0.3 s to import (measured), which only a search's sweep pays
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    folder.mkdir(parents=True, exist_ok=True)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    params = sorted({key for trial in complete for key in trial.params})
    drawings = {"optimization_history": lambda: optuna_plots.plot_optimization_history(study)}
    if len(params) >= 2 and len(complete) >= 2:
        importances = list(optuna.importance.get_param_importances(study))
        drawings["param_importances"] = lambda: optuna_plots.plot_param_importances(study)
        drawings["contour"] = lambda: optuna_plots.plot_contour(study, params=importances[:2])
    elif params and complete:
        drawings["slice"] = lambda: optuna_plots.plot_slice(study)
    drawn = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the backend is "experimental"
        for name, draw in drawings.items():
            try:
                axes = draw()
            except (ValueError, RuntimeError) as err:
                log.warning("the study's %s figure was not drawn: %s", name, err)
                continue
            figure = np.ravel(axes)[0].figure
            figure.set_size_inches(8, 5.5)
            figure.tight_layout()
            drawn.append(save_figure(figure, folder / f"{name}.png", margins=False))
    if activation and complete and SIGMA_W2 in params:
        pruned = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
                  if t.intermediate_values]
        drawn.append(plot_critical(complete, pruned, activation, sigma_b2, folder / "edge_of_chaos.png"))
    return drawn


def plot_critical(trials, pruned, activation: str, sigma_b2: float | None, path: Path) -> Path:
    """The completed trials' objective over sigma_w2 (over sigma_w2 x sigma_b2 when sigma_b2 is searched
    too), the best one marked, the pruned trials at their last reported value, beside the critical
    sigma_w2 (chi1 = 1) of ``activation``."""
    w2 = np.array([t.params[SIGMA_W2] for t in trials], float)
    value = np.array([t.value for t in trials], float)
    best = int(np.argmin(value))
    fig, ax = plt.subplots(figsize=(7, 4.8))
    if all(SIGMA_B2 in t.params for t in trials + pruned):
        b2 = np.array([t.params[SIGMA_B2] for t in trials], float)
        points = ax.scatter(b2, w2, c=np.log10(value), cmap="viridis_r", s=30)
        fig.colorbar(points, label="log10 objective (final val loss)")
        grid = np.linspace(max(b2.min(), 1e-6), b2.max(), 40)
        ax.plot(grid, [critical_sigma_w2(activation, b) for b in grid], "k--", label="critical line (chi1 = 1)")
        ax.plot(b2[best], w2[best], "r*", markersize=16, label=f"best: sigma_w2 = {w2[best]:.3g}")
        ax.set_xlabel("sigma_b2")
        ax.set_ylabel("sigma_w2")
    else:
        critical = critical_sigma_w2(activation, sigma_b2 or 0.0)
        ax.scatter(w2, value, s=24, color="tab:blue", label="completed trials")
        if pruned:
            ax.scatter([t.params[SIGMA_W2] for t in pruned], [t.intermediate_values[max(t.intermediate_values)]
                                                              for t in pruned],
                       s=24, facecolors="none", edgecolors="tab:gray", label="pruned (last reported val loss)")
        ax.plot(w2[best], value[best], "r*", markersize=16, label=f"best: sigma_w2 = {w2[best]:.3g}")
        ax.axvline(critical, color="k", linestyle="--", label=f"critical sigma_w2 = {critical:.3f} (chi1 = 1)")
        ax.set_yscale("log")
        ax.set_xlabel("sigma_w2")
        ax.set_ylabel("objective: final validation loss")
    ax.set_title(f"{activation}: the search's trials beside the edge of chaos", fontsize="medium")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path, margins=False)
