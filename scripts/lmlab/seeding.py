"""The one seeding helper every step calls first."""

import os
import random


def seed_everything(seed, deterministic=True):
    """Seed Python, numpy, torch and transformers; on CPU this makes runs byte-identical."""
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
    try:
        import transformers

        transformers.set_seed(seed)
    except ImportError:
        pass
