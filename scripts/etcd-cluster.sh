#!/usr/bin/env bash
# A 3-member etcd cluster on 127.0.0.1, for trying and testing the etcd engine.
#
#   scripts/etcd-cluster.sh start DIR [BASE_PORT]  # client ports BASE..BASE+2 (default 2379),
#                                                  # peer ports BASE+100..BASE+102
#   scripts/etcd-cluster.sh stop DIR
#   scripts/etcd-cluster.sh status DIR
#
# DIR holds each member's data (m0/ m1/ m2/), log (m0.log ...) and PID file (m0.pid ...).
# `start` on an existing DIR restarts the members that are not running, on their data.
# `start` and `status` print the engine URL: etcd://127.0.0.1:A,127.0.0.1:B,127.0.0.1:C
set -euo pipefail

usage() {
	echo "usage: $0 start DIR [BASE_PORT] | stop DIR | status DIR" >&2
	exit 2
}
[[ $# -ge 2 ]] || usage
cmd=$1
dir=$2
wait_secs=${ETCD_CLUSTER_WAIT:-30}

# The PID of member $1 if it is running (not a zombie), else nothing. The
# process is known by its arguments, which name the member's data directory:
# they are the same while `nohup` runs and after it has become etcd, and a
# PID file left by a member that is long gone matches no other process.
running_pid() {
	local file=$dir/m$1.pid pid state args
	[[ -f $file ]] || return 0
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	args=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline") || return 0
	[[ $'\n'$args$'\n' == *$'\n'"$dir/m$1"$'\n'* ]] || return 0
	state=$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
	[[ -z $state || $state == Z ]] || echo "$pid"
}

# Wait (5 s at most) until the job just started for member $1 runs `nohup`
# or etcd, not the shell forked to start it, so that running_pid sees it.
launched() {
	local tries
	for ((tries = 0; tries < 100; tries++)); do
		[[ -z $(running_pid "$1") ]] || return 0
		kill -0 "$(<"$dir/m$1.pid")" 2>/dev/null || return 0 # gone: reported below
		sleep 0.05
	done
}

# Whether member $1 answers /health with "true" (within 2 s).
healthy() {
	local reply
	reply=$(timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
		printf "GET /health HTTP/1.0\r\n\r\n" >&3 && cat <&3' _ "$(client_port "$1")" 2>/dev/null) || return 1
	[[ $reply == *'"health":"true"'* ]]
}

client_port() { echo $((base + $1)); }
peer_port() { echo $((base + 100 + $1)); }

url() {
	echo "etcd://127.0.0.1:$(client_port 0),127.0.0.1:$(client_port 1),127.0.0.1:$(client_port 2)"
}

load_base() {
	[[ -f $dir/base-port ]] || {
		echo "$dir holds no cluster (no base-port file)" >&2
		exit 1
	}
	base=$(<"$dir/base-port")
}

start() {
	command -v etcd >/dev/null || {
		echo "etcd is not installed (apt-get install etcd-server)" >&2
		exit 1
	}
	mkdir -p "$dir"
	if [[ -f $dir/base-port ]]; then
		load_base
		if [[ -n ${1:-} && $1 != "$base" ]]; then
			echo "$dir was started with base port $base, not $1" >&2
			exit 1
		fi
	else
		base=${1:-2379}
		[[ $base =~ ^[0-9]+$ ]] && ((base > 0 && base + 102 < 65536)) || usage
		echo "$base" >"$dir/base-port"
	fi
	local peers="" i
	for i in 0 1 2; do
		peers+="${peers:+,}m$i=http://127.0.0.1:$(peer_port $i)"
	done
	for i in 0 1 2; do
		[[ -z $(running_pid $i) ]] || continue
		nohup etcd --name "m$i" --data-dir "$dir/m$i" --logger zap \
			--listen-client-urls "http://127.0.0.1:$(client_port $i)" \
			--advertise-client-urls "http://127.0.0.1:$(client_port $i)" \
			--listen-peer-urls "http://127.0.0.1:$(peer_port $i)" \
			--initial-advertise-peer-urls "http://127.0.0.1:$(peer_port $i)" \
			--initial-cluster "$peers" --initial-cluster-token "ozmint-$base" \
			--initial-cluster-state new >>"$dir/m$i.log" 2>&1 </dev/null &
		echo $! >"$dir/m$i.pid"
		launched $i
	done
	local deadline=$((SECONDS + wait_secs))
	until healthy 0 && healthy 1 && healthy 2; do
		if ((SECONDS >= deadline)); then
			echo "the cluster in $dir is not healthy after ${wait_secs}s; see $dir/m*.log" >&2
			exit 1
		fi
		for i in 0 1 2; do
			if [[ -z $(running_pid $i) ]]; then
				echo "member m$i exited; the end of $dir/m$i.log:" >&2
				tail -n 5 "$dir/m$i.log" >&2
				stop
				exit 1
			fi
		done
		sleep 0.2
	done
	url
}

stop() {
	# One member at a time: a leader told to stop while its peers are stopping
	# too waits seconds for a leadership transfer that cannot happen.
	local i pid tries
	for i in 0 1 2; do
		tries=0
		while pid=$(running_pid $i) && [[ -n $pid ]]; do
			# SIGTERM, 10 s to exit; then SIGKILL, and 5 s more at most.
			if ((tries == 0)); then
				kill "$pid" 2>/dev/null || true
			elif ((tries >= 100)); then
				kill -KILL "$pid" 2>/dev/null || true
			fi
			if ((++tries > 150)); then
				echo "member m$i (pid $pid) does not exit" >&2
				return 1
			fi
			sleep 0.1
		done
		rm -f "$dir/m$i.pid"
	done
}

status() {
	load_base
	local i pid all=0
	for i in 0 1 2; do
		pid=$(running_pid $i)
		if [[ -z $pid ]]; then
			echo "m$i 127.0.0.1:$(client_port $i) stopped"
			all=1
		elif healthy $i; then
			echo "m$i 127.0.0.1:$(client_port $i) pid $pid healthy"
		else
			echo "m$i 127.0.0.1:$(client_port $i) pid $pid unhealthy"
			all=1
		fi
	done
	url
	return $all
}

case $cmd in
start) start "${3:-}" ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
