# evalkit — the two commands a newcomer needs:  make run   and   make test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# CPU wheel of torch; a GPU user sets TORCH_SPEC (see README) before `make`.
TORCH_SPEC ?= torch==2.13.0
RAW    ?= $(abspath ../shared/data/raw)

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY = 1
export TOKENIZERS_PARALLELISM = false
# Task data: without a raw-data folder, evalkit pulls the pinned files on first use into the user
# cache (~/.cache/evalkit/raw) and verifies them. Where a reference copy lies beside the checkout
# (../shared/data/raw: the developers' machines and CI, which have no GitHub access), `make run`
# and `make test` use it instead: it is checked against the same lock on every use.
ifneq ($(wildcard $(RAW)),)
export EVALKIT_RAW_DATA ?= $(RAW)
endif
# The real Debian package manpages-zh for the tests' mirror server (apt-get download), kept here
# between runs (.gitignore'd; `make clean` leaves it).
export EVALKIT_TEST_DEB_DIR ?= $(abspath .cache/debs)

.PHONY: install run test bench clean chromium slurm

install: $(VENV)/.installed chromium slurm

# Headless Chromium (Debian packages) for the leaderboard HTML test; installed only where
# /usr/bin/chromium is missing and apt-get is available (as root, or with password-less
# sudo). Without it the test skips; nothing else needs it.
chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	    echo "note: chromium missing and no root: the leaderboard HTML test will skip"; exit 0; fi; \
	  echo "installing chromium chromium-driver (leaderboard HTML test)"; \
	  $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null \
	    || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null; } \
	    || echo "note: chromium could not be installed: the leaderboard HTML test will skip"; \
	fi

# A throw-away single-node SLURM cluster for tests/test_slurm.py (tests/fixtures/slurm_cluster.py
# starts its own munged, slurmctld and slurmd as root on loopback; nothing is configured system-
# wide). Debian's packages, installed like chromium above; without them the tests skip.
SLURM_PACKAGES = slurmctld slurmd slurm-client munge
slurm:
	@if ! command -v sbatch >/dev/null 2>&1 || [ ! -x /usr/sbin/slurmd ] || [ ! -x /usr/sbin/munged ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "note: no apt-get: install SLURM (slurmctld, slurmd, client, munge) yourself, or the SLURM tests skip"; exit 0; fi; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	    echo "note: SLURM missing and no root: the SLURM cluster tests will skip"; exit 0; fi; \
	  echo "installing $(SLURM_PACKAGES) (SLURM cluster tests)"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(SLURM_PACKAGES) >/dev/null \
	    || { $$SUDO apt-get update -q >/dev/null && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	         apt-get install -y -q --no-install-recommends $(SLURM_PACKAGES) >/dev/null; } \
	    || echo "note: SLURM could not be installed: the SLURM cluster tests will skip"; \
	fi

# Torch first and pinned: an unpinned torch (or one pulled in by another package) would be
# a multi-GB CUDA build on a CPU machine.
$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_SPEC)
	$(PIP) uninstall -q -y evalkit 2>/dev/null || true  # the distribution's old name (now embedding-evalkit)
	$(PIP) install -q -e ".[test]"
	touch $@

run: install
	$(PY) -m evalkit $(ARGS)

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: install
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
