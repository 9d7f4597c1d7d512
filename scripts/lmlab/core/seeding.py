"""The one seeding helper every step calls first."""

import importlib.abc
import importlib.util
import os
import random
import sys


def _seed_torch(torch, seed, deterministic):
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


class _SeedTorchOnImport(importlib.abc.MetaPathFinder):
    """Seeds torch the moment something imports it. A step that never uses torch (tables,
    figures, statistics) so never pays the seconds its import costs, and one that imports it
    late (inside a library function) is seeded all the same."""

    def __init__(self, seed, deterministic):
        self.seed, self.deterministic = seed, deterministic

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_seed(module):
            exec_module(module)
            _seed_torch(module, self.seed, self.deterministic)

        spec.loader.exec_module = exec_and_seed
        return spec


def seed_everything(seed, deterministic=True):
    """Seed Python, numpy and torch (all that transformers.set_seed seeds on CPU/CUDA);
    on CPU this makes runs byte-identical. Torch is seeded now if it is loaded, else as soon
    as it is imported; transformers itself is not imported here (seconds of start-up)."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:
        pass
    for finder in [f for f in sys.meta_path if isinstance(f, _SeedTorchOnImport)]:
        sys.meta_path.remove(finder)
    if "torch" in sys.modules:
        _seed_torch(sys.modules["torch"], seed, deterministic)
    elif importlib.util.find_spec("torch") is not None:
        sys.meta_path.insert(0, _SeedTorchOnImport(seed, deterministic))
