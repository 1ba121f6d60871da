#!/bin/bash
# Alternating rounds of rooms at 200 msgs/s with the private broker collecting management
# statistics every 500 ms (what scripts/rabbitmq-node sets) and every 5,000 ms (RabbitMQ's default,
# what compose's broker uses). Same services (.local/bench/publish). usage: ab.sh ROUNDS
# RABBITMQ_NODE_STATS_INTERVAL was a knob added to scripts/rabbitmq-node for this run only
# (collect_statistics_interval = ${RABBITMQ_NODE_STATS_INTERVAL:-500}); not kept: no difference.
cd /work/main
out=bench/runs/2026-12-07d/stats
for round in $(seq 1 "${1:-3}"); do
  for ms in 500 5000; do
    pkill epmd
    echo "$(date -u +%H:%M:%S) $ms $round" >> $out/progress.txt
    RABBITMQ_NODE_STATS_INTERVAL=$ms BENCH_BINARIES=$PWD/.local/bench/publish dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll rooms -c 200 -k 10 -r 200 -d 20 --warmup 40 -t gateway 2>&1 \
      | grep -v "open 200\|connecting\|draining" > $out/stats$ms-$round.txt
  done
done
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
