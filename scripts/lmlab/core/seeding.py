"""The one seeding helper every step calls first."""

import os
import random


def seed_everything(seed, deterministic=True):
    """Seed Python, numpy and torch (all that transformers.set_seed seeds on CPU/CUDA);
    on CPU this makes runs byte-identical. transformers itself is not imported here: it
    costs seconds of start-up in every step that does not need it."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(seed)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
    except ImportError:
        pass
