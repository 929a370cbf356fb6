#!/usr/bin/env bash
# Stops the services started by up.sh. Data stays, so the next up.sh is quick;
# `down.sh --wipe` also deletes the data (not the cached Kafka jars).
set -euo pipefail

ROOT=/tmp/tributary-services
PG_BIN=/usr/lib/postgresql/15/bin
wipe=false
case "${1:-}" in
--wipe) wipe=true ;;
"") ;;
*)
	echo "usage: $0 [--wipe]" >&2
	exit 2
	;;
esac

log() { printf 'down.sh: %s\n' "$*" >&2; }

[[ -d $ROOT ]] || {
	log "nothing to stop ($ROOT does not exist)"
	exit 0
}
exec 9>"$ROOT/.lock"
flock -w 900 9 || {
	log "ERROR: $ROOT/.lock is held by another up.sh/down.sh"
	exit 1
}

# alive PID: exists and is no zombie (PID 1 here reaps lazily; kill -0 says yes to zombies).
alive() {
	local state
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ -n $state && $state != Z ]]
}

# stop_pid NAME PID: SIGTERM, then SIGKILL after 60 s.
stop_pid() {
	local name=$1 pid=$2 i
	kill "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 120; i++)); do
		alive "$pid" || {
			log "$name: stopped"
			return 0
		}
		sleep 0.5
	done
	log "$name: pid $pid ignored SIGTERM for 60 s; killing it"
	kill -9 "$pid" 2>/dev/null || true
}

status=0

# Kafka first: it holds no state in the databases, and stops slowest.
kpid=""
if [[ -f $ROOT/kafka/kafka.pid ]]; then
	kpid=$(cat "$ROOT/kafka/kafka.pid")
	# Only if that pid is still our broker (pids get reused).
	if ! tr '\0' '\n' <"/proc/$kpid/cmdline" 2>/dev/null | grep -qx "$ROOT/kafka/server.properties"; then
		kpid=""
	fi
fi
if [[ -n $kpid ]]; then
	stop_pid kafka "$kpid"
else
	log "kafka: not running"
fi
rm -f "$ROOT/kafka/kafka.pid"

for name in mariadb mariadb-nobinlog mariadb-badbinlog; do
	mypid=""
	[[ -f $ROOT/$name/mariadb.pid ]] && mypid=$(cat "$ROOT/$name/mariadb.pid")
	if [[ -n $mypid ]] && alive "$mypid" && [[ $(cat "/proc/$mypid/comm" 2>/dev/null) == mariadbd ]]; then
		stop_pid "$name" "$mypid"
	else
		log "$name: not running"
	fi
done

for name in pg pg-nological; do
	if [[ -f $ROOT/$name/PG_VERSION ]] &&
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$ROOT/$name" status >/dev/null 2>&1 9>&-; then
		if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$ROOT/$name" -m fast -w -t 60 stop >/dev/null 2>&1 9>&-; then
			log "$name: stopped"
		else
			log "ERROR: $name: pg_ctl stop failed; see $ROOT/$name.log"
			status=1
		fi
	else
		log "$name: not running"
	fi
done

if $wipe && ((status == 0)); then
	rm -rf "$ROOT/pg" "$ROOT/pg-nological" "$ROOT/mariadb" "$ROOT/mariadb-nobinlog" "$ROOT/mariadb-badbinlog" "$ROOT/kafka/data" "$ROOT/env.sh"
	log "data wiped (kept the Kafka jars in $ROOT/kafka/libs)"
fi
exit $status
