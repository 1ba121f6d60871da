#!/bin/bash
# Alternating rounds of closed-loop saturation with 1 and 4 workers: the workers as published
# (tiered compilation: ReadyToRun code, hot methods compiled again optimized in the background;
# /tmp/after-fuse, 3c03c6f) and the same files with "System.Runtime.TieredCompilation": false
# added to Chat.Worker.runtimeconfig.json (ReadyToRun code kept for good, the rest compiled
# optimized at first call; /tmp/tc-off). Hub and everything else identical. usage: ab.sh ROUNDS
cd /work/main
out=bench/runs/2026-12-07d/tiering
for round in $(seq 1 "${1:-2}"); do
  for side in after-fuse tc-off; do
    pkill epmd
    echo "$(date -u +%H:%M:%S) $side $round" >> $out/progress.txt
    BENCH_BINARIES=/tmp/$side dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll saturation -t gateway -w 1,4 --closed-loop --warmup 60 2>&1 \
      | grep -v "connecting\|draining" > $out/$side$round.txt
  done
done
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
