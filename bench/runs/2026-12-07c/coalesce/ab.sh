#!/bin/bash
# Alternating rounds of rooms at 200 msgs/s: before (e522f3b: batches, no queue; /tmp/batch-only) and
# after (the batches, published into .local/bench/publish). usage: ab.sh ROUNDS
cd /work/main
out=bench/runs/2026-12-07c/coalesce
for round in $(seq 1 "${1:-4}"); do
  for side in before after; do
    dir=/tmp/batch-only; [[ $side == after ]] && dir=$PWD/.local/bench/publish
    pkill epmd
    echo "$(date -u +%H:%M:%S) $side $round" >> $out/progress.txt
    BENCH_BINARIES=$dir dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll rooms -c 200 -k 10 -r 200 -d 20 --warmup 40 -t gateway --statements 2>&1 \
      | grep -v "open 200\|connecting\|draining" > $out/$side$round.txt
  done
done
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
