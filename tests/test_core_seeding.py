"""seed_everything seeds torch whether it is loaded before or after the call, and a step that
never uses torch does not import it."""

import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def run(code):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(SCRIPTS)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_torch_imported_after_seeding_is_seeded():
    late = run("from lmlab.core.seeding import seed_everything; seed_everything(5); import torch; "
               "print(torch.rand(4).tolist(), torch.are_deterministic_algorithms_enabled())")
    early = run("import torch; from lmlab.core.seeding import seed_everything; seed_everything(5); "
                "print(torch.rand(4).tolist(), torch.are_deterministic_algorithms_enabled())")
    other = run("import torch; torch.manual_seed(6); print(torch.rand(4).tolist(), True)")
    assert late == early and late.endswith("True") and late != other


def test_reseeding_replaces_the_pending_seed():
    out = run("from lmlab.core.seeding import seed_everything; seed_everything(5); seed_everything(9); import torch, sys; "
              "a = torch.rand(2).tolist(); torch.manual_seed(9); print(a == torch.rand(2).tolist(), "
              "sum(type(f).__name__ == '_SeedTorchOnImport' for f in sys.meta_path))")
    assert out == "True 0"


def test_a_step_without_torch_does_not_import_it(tmp_path):
    code = f"""
import sys
from types import SimpleNamespace
from lmlab.core.step import step

class Named(list):
    def __init__(self, items=(), **named):
        super().__init__(items); self.__dict__.update(named)
    def items(self):
        return list(self.__dict__.items())

smk = SimpleNamespace(log=[r"{tmp_path / 'x.log'}"], config={{"seed": 3}}, threads=1, rule="r",
                      input=Named(), output=Named(), params=Named(), wildcards=Named())
with step(smk):
    pass
print("torch" in sys.modules)
"""
    assert run(code) == "False"
