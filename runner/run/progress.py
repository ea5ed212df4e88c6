"""A tqdm progress bar over optimizer steps (silent when not on a terminal)."""

from __future__ import annotations

from tqdm.auto import tqdm

from backprop_core import Callback

# no monitor thread: a sweep's launching process forks the report's figure workers, and a fork must not
# inherit a lock another thread holds
tqdm.monitor_interval = 0


class ProgressBar(Callback):
    def __init__(self, description: str, disable: bool | None = None) -> None:
        self.description = description
        self.disable = disable  # None: tqdm's own rule, off when stderr is not a terminal
        self.bar = None
        self.position = 0

    def on_fit_start(self, net, total_steps: int) -> None:
        self.bar = tqdm(total=total_steps, desc=self.description[:40], unit="step", disable=self.disable, leave=False)

    def on_step(self, record: dict[str, float]) -> None:
        step = int(record["step"])
        self.bar.update(step + 1 - self.position)
        self.position = step + 1
        self.bar.set_postfix(loss=f"{record['train/loss']:.4g}", refresh=False)

    def on_fit_end(self, result) -> None:
        self.bar.close()
