#!/usr/bin/env bash
# Builds the documentation site strictly (mkdocs.yml, docs/): any warning (a broken link or
# anchor, a docstring mkdocstrings cannot render, a missing snippet) fails the build.
#   bash scripts/docs.sh                       # build into a temporary directory, then remove it
#   VPSEAL_DOCS_SITE=site bash scripts/docs.sh # keep the site there (site/ is gitignored)
#   .venv-test/bin/mkdocs serve                # preview while writing
#
# It uses the test virtualenv ($VPSEAL_VENV, default .venv-test, as scripts/test.sh makes it)
# and installs the "docs" extra's packages into it when they are missing; without that
# virtualenv it makes one with only those packages. vpseal itself need not be installed: the
# API reference is read from src/ by mkdocstrings (griffe), without importing it.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VPSEAL_VENV:-.venv-test}
started=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
  echo "== docs: making virtualenv $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi

# The docs extra's requirements, read from pyproject.toml (one source for them).
mapfile -t requirements < <("$VENV/bin/python" - <<'EOF'
import re
try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None
text = open("pyproject.toml", encoding="utf-8").read()
if tomllib is not None:
    docs = tomllib.loads(text)["project"]["optional-dependencies"]["docs"]
else:
    block = re.search(r"^docs = \[(.*?)^\]", text, re.S | re.M).group(1)
    docs = re.findall(r'"([^"]+)"', block)
print("\n".join(docs))
EOF
)
if [ "${#requirements[@]}" -eq 0 ]; then
  echo "docs: no 'docs' extra found in pyproject.toml" >&2
  exit 1
fi
# pip does nothing (and asks no index) when they are already satisfied.
"$VENV/bin/python" -m pip install -q "${requirements[@]}"

site=${VPSEAL_DOCS_SITE:-}
if [ -z "$site" ]; then
  site=$(mktemp -d "${TMPDIR:-/tmp}/vpseal-docs.XXXXXX")
  trap 'rm -rf "$site"' EXIT
fi
echo "== docs: mkdocs build --strict -d $site"
NO_MKDOCS_2_WARNING=1 "$VENV/bin/python" -m mkdocs build --strict --clean -d "$site"
echo "== docs: built strictly in $(( $(date +%s) - started )) s"
