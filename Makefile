# The README's two commands: `make paper` and `make test`. Both set up first and are idempotent.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# The run `make verify` checks: results/<run_name>/ of config/config.yaml unless RUN is given.
RUN ?= embedded-cpu-default

.PHONY: setup paper test verify compare system-deps lint clean

setup: $(STAMP)

# The stamp depends on the requirement files, so a second run installs nothing.
$(STAMP): requirements.txt requirements-nodeps.txt requirements-test.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-test.txt
	touch $(STAMP)

paper: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

# Re-hash everything the paper depends on (files, model folders, raw inputs, the chain of
# records) against the disk; one line per problem, then the verdict; non-zero on any problem.
verify: $(STAMP)
	PYTHONPATH=scripts $(BIN)/python -m lmlab.paper.verify results/$(RUN)/paper/provenance.json

# Two runs side by side (A and B are run roots, e.g. results/embedded-cpu-default and a
# reviewer's rerun): every output and number that differs; timings are listed apart.
compare:
	PYTHONPATH=scripts $(BIN)/python -m lmlab.paper.compare $(A) $(B)

# Chromium (paper browser check) and SLURM (real cluster test) come from Debian's packages.
system-deps:
	bash tests/system_deps.sh

test: $(STAMP) system-deps
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

clean:
	rm -rf results .snakemake
