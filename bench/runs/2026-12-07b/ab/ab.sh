#!/bin/bash
# usage: ab2.sh label binaries
cd /work/main
pkill epmd
BENCH_BINARIES=$2 dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll rooms -c 200 -k 10 -r 200 -d 20 --warmup 40 -t gateway --statements 2>&1 | grep -v "open 200\|connecting\|draining" > /tmp/pgrun/ab-$1.txt
