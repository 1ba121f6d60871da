#!/bin/bash
# BENCH_HUB_ENV was a hook of this experiment only (not committed): "KEY=VALUE ..." added to the hub's environment alone, so that the baseline ran with the defaults.
cd /work/main
B=bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll
export BENCH_BINARIES=/tmp/after-turn
date
BENCH_HUB_ENV="" dotnet $B idle -c 19000 -t both > /tmp/idle-default.txt 2>&1
date
sleep 20
BENCH_HUB_ENV="DOTNET_GCgen0size=0x400000" dotnet $B idle -c 19000 -t gateway > /tmp/idle-gen0-4m.txt 2>&1
date
sleep 20
BENCH_HUB_ENV="DOTNET_GCgen0MaxBudget=0x400000" dotnet $B idle -c 19000 -t gateway > /tmp/idle-gen0max-4m.txt 2>&1
date
