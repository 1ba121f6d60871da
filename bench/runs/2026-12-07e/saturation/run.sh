#!/bin/bash
# saturation 1 and 4 workers, closed loop, on the services with the turn taken with the commit (33d942f).
cd /work/main
pkill epmd
BENCH_BINARIES=/tmp/after-turn dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll saturation -t gateway -w 1,2,4 --closed-loop --warmup 60 2>&1 \
  | grep -v "connecting\|draining" > bench/runs/2026-12-07e/saturation/after-turn.txt
echo "$(date -u +%H:%M:%S) done" >> bench/runs/2026-12-07e/saturation/progress.txt
