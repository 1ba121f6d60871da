#!/bin/bash
# Current figures for the targets that decide whether issues 13 and 14 can be met on this machine.
# Services: /tmp/after-turn = 33d942f's Hub.Front, Chat.Worker and baseline, published ReadyToRun
# (the services are unchanged since).
cd /work/main
B=bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll
export BENCH_BINARIES=/tmp/after-turn
out=bench/runs/2026-12-07f/status
date -u; uptime
dotnet $B rooms -t both --warmup 40 > $out/rooms1000.txt 2>&1
date -u; sleep 30
dotnet $B saturation -t gateway -w 1,2,4,8 --closed-loop --warmup 60 > $out/saturation.txt 2>&1
date -u
