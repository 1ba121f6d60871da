#!/bin/bash
# Alternating rounds of rooms at 200 msgs/s: before (9e8de63's services, the flush taking its
# room's lock in a round trip of its own; published into /tmp/before-fuse) and after (the commit's
# round trip taking it; published into /tmp/after-fuse). usage: [OFFSET=N] ab.sh ROUNDS
# (rounds 5-8 ran as OFFSET=4 ab.sh 4, 10:25-10:38 UTC)
cd /work/main
out=bench/runs/2026-12-07d/fused
for round in $(seq 1 "${1:-4}"); do
  for side in before after; do
    pkill epmd
    echo "$(date -u +%H:%M:%S) $side $((round + ${OFFSET:-0}))" >> $out/progress.txt
    BENCH_BINARIES=/tmp/$side-fuse dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll rooms -c 200 -k 10 -r 200 -d 20 --warmup 40 -t gateway --statements 2>&1 \
      | grep -v "open 200\|connecting\|draining" > $out/$side$((round + ${OFFSET:-0})).txt
  done
done
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
