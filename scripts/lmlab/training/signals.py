"""Stopping a training run on a signal, the same way for every trainer.

SIGTERM (SLURM preemption, Snakemake shutdown) or SIGINT while `trainer.train()` runs: the
current optimizer step ends, a checkpoint is saved, training stops, and the caller raises
`TrainingInterrupted` (exit code 128 + signal: `lmlab.core.launch.EXIT_PREEMPTED`, 143, for
SIGTERM). Started again with the same config, the run resumes from that checkpoint.

Under DDP every process must stop at the same step (a process that goes on alone waits
forever in the next all-reduce), so the decision is taken at the end of a step by all of them
together: a signal seen by any process stops them all. Training stops only once the
checkpoint is saved (`on_save`), which keeps the stop flag out of the saved trainer state.
"""

import logging
import signal
from contextlib import contextmanager

from transformers import TrainerCallback

from lmlab.core.launch import any_process

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(SystemExit):
    """Raised after a signalled run saved its checkpoint; the exit code is 128 + signal."""


class StopOnSignal(TrainerCallback):
    """The trainer callback and the signal handler of one `trainer.train()` call."""

    def __init__(self):
        self.received = None  # the signal this process received (SIGTERM when another process did)
        self.stopping = False  # agreed by every process at the end of a step

    def handle(self, signum, frame):
        if self.received is None:
            log.warning("signal %d: saving a checkpoint at the end of this step, then exiting", signum)
        self.received = signum

    @contextmanager
    def installed(self):
        """The handler for SIGTERM and SIGINT while the block runs; the previous ones after it."""
        previous = {sig: signal.signal(sig, self.handle) for sig in SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def on_step_end(self, args, state, control, **kwargs):
        if any_process(self.received is not None):
            self.received = self.received or signal.SIGTERM
            self.stopping = True
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kwargs):
        if self.stopping:
            control.should_training_stop = True
        return control

    def raise_if_stopped(self):
        if self.received is not None:
            raise TrainingInterrupted(128 + self.received)
