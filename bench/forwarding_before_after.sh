#!/usr/bin/env bash
# SFU forwarding before/after a change, same machine, back to back, interleaved runs.
#
#   bench/forwarding_before_after.sh <before-commit> [runs] [out-dir]
#
# Checks <before-commit> out in a temporary git worktree and runs this tree's
# bench/bench_sfu_forwarding.py against it with the same venv: PYTHONPATH puts the
# worktree's libs/*/src and services/*/src ahead of the venv's editable installs
# (the report names the parley.sfu directory it imported, so a run shows which code it measured).
# Each round runs: before, after, after with BENCH_SFU_TWCC=1. Reports land in out-dir.
set -euo pipefail
before=${1:?usage: $0 <before-commit> [runs] [out-dir]}
runs=${2:-3}
out=${3:-/tmp/parley-forwarding}
root=$(cd "$(dirname "$0")/.." && pwd)
python="$root/.venv/bin/python"
tree=$(mktemp -d /tmp/parley-before.XXXX)
rmdir "$tree"
git -C "$root" worktree add --detach "$tree" "$before" >/dev/null
trap 'git -C "$root" worktree remove --force "$tree"' EXIT
before_path=$(ls -d "$tree"/libs/*/src "$tree"/services/*/src | paste -sd:)
mkdir -p "$out"
cd "$root"
for i in $(seq 1 "$runs"); do
  echo "round $i: load $(cut -d' ' -f1-3 /proc/loadavg)"
  PYTHONPATH="$before_path" "$python" -m bench sfu_forwarding >"$out/before-$i.md"
  "$python" -m bench sfu_forwarding >"$out/after-$i.md"
  BENCH_SFU_TWCC=1 "$python" -m bench sfu_forwarding >"$out/after-twcc-$i.md"
done
grep -H "per SFU core\*\*" "$out"/*.md
