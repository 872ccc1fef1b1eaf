# tagsim: `make run` serves the API with a local PostGIS and sample data; `make test` runs
# every test against a throwaway database. Both install what is missing first.
.DEFAULT_GOAL := help
VENV := .venv/bin

.PHONY: help venv run test lint lock format db-up db-down bench bench-quick clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

venv: ## create .venv and install tagsim with its dependencies
	@bash scripts/bootstrap.sh

run: venv ## start PostGIS, migrate, load the sample, run the worker, serve on 127.0.0.1:8000
	$(VENV)/tagsim run

test: venv ## the whole test suite (ruff, mypy, then pytest against a throwaway database)
	@bash scripts/test-tools.sh
	$(VENV)/tagsim db up
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/pytest $(PYTEST_ARGS)

lint: venv ## ruff check, format check and mypy
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy

lock: venv ## write requirements.lock from what .venv holds (after changing pyproject.toml)
	$(VENV)/pip freeze --exclude-editable | grep -v '^tagsim' > requirements.lock

format: venv ## apply ruff's formatting and fixes
	$(VENV)/ruff check --fix .
	$(VENV)/ruff format .

db-up: venv ## start the local PostGIS cluster
	$(VENV)/tagsim db up

db-down: venv ## stop the local PostGIS cluster
	$(VENV)/tagsim db down

bench: venv ## the benchmark suite, full size (see bench/README.md)
	$(VENV)/python -m bench

bench-quick: venv ## the benchmark suite on small data (under two minutes)
	$(VENV)/python -m bench --quick

clean: ## stop the cluster and remove .tagsim (database, sample files) and .venv
	-$(VENV)/tagsim db down
	rm -rf .tagsim .venv
