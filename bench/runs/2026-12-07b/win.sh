#!/bin/bash
# usage: win.sh label : rooms gateway against /tmp/pgss, pg_stat_statements reset when the measured window opens
cd /work/main
U="postgresql://postgres:$(cat /tmp/pgss/password)@127.0.0.1:27354/postgres"
pkill epmd
out=/tmp/pgrun/$1.raw
BENCH_BINARIES=/work/main/.local/bench/publish dotnet bench/SocketStarter.Bench/bin/Release/net10.0/SocketStarter.Bench.dll rooms -c 200 -k 10 -r 200 -d 20 --warmup 40 -t gateway --postgres "$U" > $out 2>&1 &
pid=$!
until grep -q "open 200/200" $out; do sleep 0.5; done
sleep 40; psql "$U" -qc "select pg_stat_statements_reset()" >/dev/null; date -u +%T > /tmp/pgrun/$1.reset
sleep 20; psql "$U" -P pager=off -c "select s.calls, round(s.mean_exec_time::numeric,3) mean_ms, round(s.stddev_exec_time::numeric,2) sd, round(s.max_exec_time::numeric,0) mx, round(s.total_exec_time::numeric,0) tot, left(regexp_replace(s.query,'\s+',' ','g'),70) q from pg_stat_statements s where s.calls > 100 order by s.total_exec_time desc limit 12" > /tmp/pgrun/$1.pgss
wait $pid
grep -v "open 200\|connecting\|draining" $out > /tmp/pgrun/$1.txt
echo done >> /tmp/pgrun/$1.txt
