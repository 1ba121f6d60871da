#!/bin/bash
# Alternating rounds, before (4e10ff2's services: the turn taken in a round trip of its own;
# published ReadyToRun into /tmp/before-turn) and after (33d942f: the turn taken with the commit
# by an event whose predecessor the worker applied; /tmp/after-turn).
# Each round: rooms at 200 msgs/s (2 workers, one hub), before then after; then echo at 20 msgs/s
# (gateway and baseline in one run), before then after. usage: ab.sh ROUNDS
cd /work/main
out=bench/runs/2026-12-07e/turn
bench="dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll"
for round in $(seq 1 "${1:-3}"); do
  for side in before after; do
    pkill epmd
    echo "$(date -u +%H:%M:%S) rooms $side $round" >> $out/progress.txt
    BENCH_BINARIES=/tmp/$side-turn $bench rooms -c 200 -k 10 -r 200 -d 20 --warmup 40 -t gateway --statements 2>&1 \
      | grep -v "open 200\|connecting\|draining" > $out/rooms-$side$round.txt
  done
  for side in before after; do
    pkill epmd
    echo "$(date -u +%H:%M:%S) echo $side $round" >> $out/progress.txt
    BENCH_BINARIES=/tmp/$side-turn $bench echo --warmup 40 -d 20 2>&1 \
      | grep -v "connecting\|draining" > $out/echo-$side$round.txt
  done
done
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
