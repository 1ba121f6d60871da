#!/bin/bash
# Rooms at 200 msgs/s, each run after 45 s with nothing running, in the order after, before,
# before, after, after, before (rounds 7-9): neither side always goes first.
cd /work/main
out=bench/runs/2026-12-07e/turn
bench="dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll"
run() {
  pkill epmd; sleep 45
  echo "$(date -u +%H:%M:%S) rooms $1 $2 (load $(cut -d' ' -f1 /proc/loadavg))" >> $out/progress.txt
  BENCH_BINARIES=/tmp/$1-turn $bench rooms -c 200 -k 10 -r 200 -d 20 --warmup 40 -t gateway --statements 2>&1 \
    | grep -v "open 200\|connecting\|draining" > $out/rooms-$1$2.txt
}
run after 7; run before 7; run before 8; run after 8; run after 9; run before 9
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
