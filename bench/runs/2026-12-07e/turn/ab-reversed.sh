#!/bin/bash
# As ab.sh, rooms only, each round "after" first, then "before" (rounds 4-6): so that neither side
# always follows the other. usage: ab-reversed.sh ROUNDS
cd /work/main
out=bench/runs/2026-12-07e/turn
bench="dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll"
for round in $(seq 4 $((3 + ${1:-3}))); do
  for side in after before; do
    pkill epmd
    echo "$(date -u +%H:%M:%S) rooms $side $round" >> $out/progress.txt
    BENCH_BINARIES=/tmp/$side-turn $bench rooms -c 200 -k 10 -r 200 -d 20 --warmup 40 -t gateway --statements 2>&1 \
      | grep -v "open 200\|connecting\|draining" > $out/rooms-$side$round.txt
  done
done
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
