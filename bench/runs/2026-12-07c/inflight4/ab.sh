#!/bin/bash
# Alternating: before = e522f3b (command batches, no send queue; /tmp/batch-only), after = sends
# queued per hub instance, 4 in flight (.local/bench/publish). Saturation (closed loop, 1 and 4
# workers) then rooms at 200 msgs/s, each side in turn. usage: ab.sh ROUNDS
cd /work/main
out=bench/runs/2026-12-07c/inflight4
bench() { BENCH_BINARIES=$1 dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll "${@:2}" 2>&1 | grep -v "open 200\|connecting\|draining\|^  [0-9]* s "; }
for round in $(seq 1 "${1:-2}"); do
  for side in before after; do
    dir=/tmp/batch-only; [[ $side == after ]] && dir=$PWD/.local/bench/publish
    pkill epmd
    echo "$(date -u +%H:%M:%S) $side $round saturation" >> $out/progress.txt
    bench $dir saturation -t gateway -w 1,4 --closed-loop --warmup 60 > $out/saturation-$side$round.txt
    pkill epmd
    echo "$(date -u +%H:%M:%S) $side $round rooms" >> $out/progress.txt
    bench $dir rooms -c 200 -k 10 -r 200 -d 20 --warmup 40 -t gateway > $out/rooms-$side$round.txt
  done
done
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
