#!/usr/bin/env bash
# Make `.venv` a link to a cached environment built from requirements/lock.txt.
#
# The environment (torch with its CUDA libraries, ~6 GB) lives in a cache directory keyed by the
# hash of the lock file and the Python version, so fresh clones reuse it, a changed lock builds a
# new one, and only the three most recently used environments are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LOCK=requirements/lock.txt
cache=${AFFECTLAB_VENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/affectlab/venvs}
key=$( { cat "$LOCK"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)
env_dir="$cache/$key"

link() {
  if [ -e .venv ] && [ ! -L .venv ]; then
    echo "replacing the plain .venv directory with a link to the cached environment" >&2
    rm -rf .venv
  fi
  ln -sfn "$env_dir" .venv
  touch "$env_dir/.complete"  # marks it recently used for pruning
}

if [ -f "$env_dir/.complete" ]; then link; exit 0; fi

mkdir -p "$cache"
exec 9>"$env_dir.lock"
flock 9
if [ ! -f "$env_dir/.complete" ]; then
  rm -rf "$env_dir"
  echo "building the environment in $env_dir (first use of this lock file, a few minutes)" >&2
  "$PYTHON" -m venv "$env_dir"
  "$env_dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$LOCK" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  touch "$env_dir/.complete"
fi
link
# prune: keep the three most recently used environments
ls -1t "$cache"/*/.complete 2>/dev/null | tail -n +4 | while read -r marker; do
  old=$(dirname "$marker")
  [ "$old" != "$env_dir" ] && rm -rf "$old" "$old.lock"
done
exit 0
