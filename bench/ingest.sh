#!/usr/bin/env sh
# Rerun the ingest benchmark (one JSON object on stdout, progress on stderr); extra arguments are passed on.
exec "$(dirname "$0")/../.venv/bin/warroom" bench ingest --json "$@"
