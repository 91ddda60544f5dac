# Thin aliases: scripts/dev.py does the work, so `make` is optional.
PYTHON ?= python3

.PHONY: run test bench lint fmt

run:
	$(PYTHON) scripts/dev.py run

test:
	$(PYTHON) scripts/dev.py test

bench:
	$(PYTHON) scripts/dev.py bench

lint:
	$(PYTHON) scripts/dev.py lint

fmt:
	$(PYTHON) scripts/dev.py fmt
