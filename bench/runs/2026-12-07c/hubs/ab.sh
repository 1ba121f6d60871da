#!/bin/bash
# hubs 1 → 2 → 4, clients in turn: before = c3e30ac (/tmp/before), after = command batches and the
# per-instance send queue (.local/bench/publish, 8b6ca28's services). One round each.
cd /work/main
out=bench/runs/2026-12-07c/hubs
for side in before after; do
  dir=/tmp/before; [[ $side == after ]] && dir=$PWD/.local/bench/publish
  pkill epmd
  echo "$(date -u +%H:%M:%S) $side" >> $out/progress.txt
  BENCH_BINARIES=$dir dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll hubs -t gateway 2>&1 \
    | grep -v "open 200\|connecting\|draining\|^  [0-9]* s " > $out/$side.txt
done
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
