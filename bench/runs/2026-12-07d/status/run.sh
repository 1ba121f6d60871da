#!/bin/bash
# The targets' status after 3c03c6f (published into /tmp/after-fuse): echo twice (gateway and
# baseline), then closed-loop saturation with 1, 2 and 4 workers.
cd /work/main
out=bench/runs/2026-12-07d/status
bin=/tmp/after-fuse
pkill epmd
echo "$(date -u +%H:%M:%S) echo" >> $out/progress.txt
BENCH_BINARIES=$bin dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll echo --warmup 40 -d 20 --repeat 2 2>&1 | grep -v "connecting\|draining" > $out/echo.txt
pkill epmd
echo "$(date -u +%H:%M:%S) saturation" >> $out/progress.txt
BENCH_BINARIES=$bin dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll saturation -t gateway -w 1,2,4 --closed-loop --warmup 60 2>&1 | grep -v "connecting\|draining" > $out/saturation.txt
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
