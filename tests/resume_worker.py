"""One trainer run in its own process, for the signal tests of tests/test_training.py:

    python tests/resume_worker.py lmlab.module:function KWARGS.json MARKER_DIR

calls the function with the keyword arguments of KWARGS.json plus one callback that, at the
first checkpoint this process saves, writes MARKER_DIR/saved-STEP and waits until
MARKER_DIR/release exists, so the test can signal the process at a known step.
"""

import json
import logging
import sys
import time
from pathlib import Path

from transformers import TrainerCallback

from lmlab.core.launch import resolve


class PauseAfterFirstSave(TrainerCallback):
    def __init__(self, marker_dir, timeout=300):
        self.marker_dir, self.timeout, self.paused = Path(marker_dir), timeout, False

    def on_save(self, args, state, control, **kwargs):
        if not self.paused:
            self.paused = True
            (self.marker_dir / f"saved-{state.global_step}").write_text("")
            deadline = time.time() + self.timeout
            while not (self.marker_dir / "release").exists() and time.time() < deadline:
                time.sleep(0.02)
        return control


def main(spec, kwargs_path, marker_dir):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True)
    kwargs = json.loads(Path(kwargs_path).read_text())
    resolve(spec)(**kwargs, callbacks=[PauseAfterFirstSave(marker_dir)])


if __name__ == "__main__":
    main(*sys.argv[1:])
