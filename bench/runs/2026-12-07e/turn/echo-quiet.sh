#!/bin/bash
# Echo at 20 msgs/s (gateway and baseline in one run), each run after 60 s with nothing running,
# in the order after, before, before, after (rounds 4-5): neither side always follows the other
# or a heavy run. usage: echo-quiet.sh
cd /work/main
out=bench/runs/2026-12-07e/turn
bench="dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll"
run() {
  pkill epmd; sleep 60
  echo "$(date -u +%H:%M:%S) echo $1 $2 (load $(cut -d' ' -f1 /proc/loadavg))" >> $out/progress.txt
  BENCH_BINARIES=/tmp/$1-turn $bench echo --warmup 40 -d 20 2>&1 | grep -v "connecting\|draining" > $out/echo-$1$2.txt
}
run after 4; run before 4; run before 5; run after 5
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
