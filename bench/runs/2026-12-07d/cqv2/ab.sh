#!/bin/bash
# Alternating rounds of rooms at 200 msgs/s with the broker's classic queues (the hub instances'
# queues, what a reply waits in) on RabbitMQ's default storage (CQv1) and on CQv2
# (classic_queue.default_version = 2, given to scripts/rabbitmq-node as a base config). Same
# services (.local/bench/publish). usage: ab.sh ROUNDS
cd /work/main
out=bench/runs/2026-12-07d/cqv2
for round in $(seq 1 "${1:-3}"); do
  for v in 1 2; do
    pkill epmd
    echo "$(date -u +%H:%M:%S) v$v $round" >> $out/progress.txt
    conf=; [[ $v == 2 ]] && conf=$PWD/$out/cqv2.conf
    RABBITMQ_NODE_CONF=$conf BENCH_BINARIES=$PWD/.local/bench/publish dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll rooms -c 200 -k 10 -r 200 -d 20 --warmup 40 -t gateway 2>&1 \
      | grep -v "open 200\|connecting\|draining" > $out/cqv$v-$round.txt
  done
done
echo "$(date -u +%H:%M:%S) done" >> $out/progress.txt
