#!/usr/bin/env bash
# Starts the services the tests need, on loopback ports of their own, and writes
# /tmp/tributary-services/env.sh for the tests to source:
#   PostgreSQL 15 (wal_level=logical)   127.0.0.1:55432
#   PostgreSQL 15 (wal_level=replica)   127.0.0.1:55433  (bad-input tests)
#   MariaDB 10.11 (ROW binlog, GTID)    127.0.0.1:33306
#   MariaDB 10.11 (log_bin OFF)         127.0.0.1:33307  (bad-input tests)
#   MariaDB 10.11 (STATEMENT, MINIMAL)  127.0.0.1:33308  (bad-input tests)
#   Apache Kafka 4.x (KRaft)            127.0.0.1:19092  (controller on 19093)
# and installs kcat. Missing Debian packages are installed; Kafka's jars come from
# Maven Central. Idempotent: running services are left alone, and two concurrent
# runs serialise on a lock. Must run as root (apt-get; postgres/mysql users).
set -euo pipefail

# The daemons started below would inherit the caller's open descriptors and
# keep them as long as they run: a lock taken by `flock FILE make test` would
# stay held by PostgreSQL, MariaDB and Kafka. Close everything but stdio (and
# bash's own 255, where it reads this script from).
for fd in /proc/$$/fd/*; do
	fd=${fd##*/}
	if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2 && fd < 255)); then
		eval "exec $fd>&-"
	fi
done

ROOT=/tmp/tributary-services
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PG_BIN=/usr/lib/postgresql/15/bin
PG_PORT=55432
PG_NOLOGICAL_PORT=55433
PG_PASSWORD=postgres
MY_PORT=33306
MY_NOBINLOG_PORT=33307
MY_BADBINLOG_PORT=33308
MY_PASSWORD=mariadb
KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093

log() { printf 'up.sh: %s\n' "$*" >&2; }

# fail names the service and its log, shows the log's tail, and exits non-zero.
fail() {
	local svc=$1 logfile=$2 msg=$3
	log "ERROR: $svc: $msg"
	if [[ -n $logfile && -f $logfile ]]; then
		log "---- last lines of $logfile ----"
		tail -n 40 "$logfile" >&2 || true
		log "---- end of $logfile ----"
	fi
	log "ERROR: $svc failed to start; full log: ${logfile:-none}"
	exit 1
}

# alive PID [COMM]: the process exists, is no zombie waiting to be reaped (kill -0
# says yes to those, and PID 1 here reaps lazily) and, if given, has that name
# (pids are reused after a reboot that kept /tmp).
alive() {
	local pid=$1 want=${2:-} state
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ -n $state && $state != Z ]] || return 1
	[[ -z $want || $(cat "/proc/$pid/comm" 2>/dev/null) == "$want" ]]
}

# detach PIDFILE LOGFILE CMD...: runs CMD in a session of its own (so Ctrl-C on
# `make test` does not take the services down), without the lock fd, and writes
# CMD's own pid to PIDFILE (setsid may fork, so $! is not it).
detach() {
	local pidfile=$1 logfile=$2 i
	shift 2
	rm -f "$pidfile"
	setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
		</dev/null >>"$logfile" 2>&1 9>&- &
	for ((i = 0; i < 100; i++)); do
		[[ -s $pidfile ]] && return 0
		sleep 0.05
	done
	return 1
}

if [[ $(id -u) -ne 0 ]]; then
	log "ERROR: must run as root (it installs packages and runs services as the postgres and mysql users)"
	exit 1
fi

mkdir -p "$ROOT"
chmod 755 "$ROOT"
# fd 9 holds the lock; every daemon below is started with 9>&- so it does not
# inherit the lock and block the next run forever.
exec 9>"$ROOT/.lock"
if ! flock -w 900 9; then
	log "ERROR: another up.sh held $ROOT/.lock for 15 minutes"
	exit 1
fi

# ---------------------------------------------------------------- packages

missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
[[ -x /usr/sbin/mariadbd && -x /usr/bin/mariadb-install-db && -x /usr/bin/mariadb ]] || missing+=(mariadb-server mariadb-client)
[[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]] || missing+=(postgresql-15 postgresql-client-15)
# PostGIS: the PostgreSQL sink stores geometries as PostGIS geometry where the
# extension is installed (TestSinkShapeAllTargets, TestSinkShapePostGIS).
[[ -f /usr/share/postgresql/15/extension/postgis.control ]] || missing+=(postgresql-15-postgis-3)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)

if ((${#missing[@]} > 0)); then
	log "installing Debian packages: ${missing[*]}"
	# Debian's maintainer scripts start mariadb/postgresql on their default ports;
	# a policy-rc.d that answers 101 forbids that for the duration of the install.
	policy=/usr/sbin/policy-rc.d
	policy_backup=""
	if [[ -e $policy ]]; then
		policy_backup=$(mktemp)
		cp -p "$policy" "$policy_backup"
	fi
	restore_policy() {
		if [[ -n $policy_backup ]]; then
			cp -p "$policy_backup" "$policy" && rm -f "$policy_backup"
		else
			rm -f "$policy"
		fi
	}
	trap restore_policy EXIT
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	export DEBIAN_FRONTEND=noninteractive
	apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	if ! apt-get "${apt_opts[@]}" update -qq >"$ROOT/apt.log" 2>&1; then
		fail packages "$ROOT/apt.log" "apt-get update failed"
	fi
	if ! apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}" >>"$ROOT/apt.log" 2>&1; then
		fail packages "$ROOT/apt.log" "apt-get install ${missing[*]} failed"
	fi
	restore_policy
	trap - EXIT
	# Belt and braces: if a packaged service got started anyway (systemd host),
	# stop and disable it so only our own instances run.
	if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
		systemctl disable --now mariadb.service postgresql.service >/dev/null 2>&1 || true
	fi
	if command -v pg_lsclusters >/dev/null 2>&1; then
		pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1, $2}' | while read -r ver name; do
			pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
		done
	fi
	if [[ -f /run/mysqld/mysqld.pid ]]; then
		kill "$(cat /run/mysqld/mysqld.pid)" 2>/dev/null || true
	fi
fi
KCAT=$(command -v kcat)

# ---------------------------------------------------------------- PostgreSQL

# pg_instance DIRNAME PORT WAL_LEVEL
pg_instance() {
	local name=$1 port=$2 wal_level=$3
	local dir=$ROOT/$name logfile=$ROOT/$name.log
	touch "$logfile"
	chown postgres: "$logfile"

	if [[ ! -f $dir/PG_VERSION ]]; then
		log "$name: initdb into $dir"
		rm -rf "$dir" "$dir.init"
		install -d -m 700 -o postgres -g postgres "$dir.init"
		local pwfile
		pwfile=$(mktemp)
		printf '%s\n' "$PG_PASSWORD" >"$pwfile"
		chown postgres: "$pwfile"
		# Into a scratch dir first, so an interrupted initdb never leaves a half
		# cluster that the PG_VERSION check above would take for a good one.
		if ! runuser -u postgres -- "$PG_BIN/initdb" -D "$dir.init" -U postgres \
			--pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
			-E UTF8 --locale=C.UTF-8 >>"$logfile" 2>&1 9>&-; then
			rm -f "$pwfile"
			fail "$name" "$logfile" "initdb failed"
		fi
		rm -f "$pwfile"
		echo "include 'tributary.conf'" >>"$dir.init/postgresql.conf"
		mv "$dir.init" "$dir"
	fi

	# Rewritten on every run; takes effect at the next start.
	cat >"$dir/tributary.conf" <<EOF
# written by integration/services/up.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = $wal_level
max_replication_slots = 32
max_wal_senders = 32
max_connections = 200
fsync = on
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	# The local socket lives in the 0700 data dir, so trust there reaches only
	# postgres and root; TCP always needs the password, so a wrong one fails.
	cat >"$dir/pg_hba.conf" <<'EOF'
# written by integration/services/up.sh
local   all           all                    trust
local   replication   all                    trust
host    all           all      127.0.0.1/32  scram-sha-256
host    replication   all      127.0.0.1/32  scram-sha-256
EOF
	chown postgres: "$dir/tributary.conf" "$dir/pg_hba.conf"

	local pmpid=""
	[[ -f $dir/postmaster.pid ]] && pmpid=$(head -n 1 "$dir/postmaster.pid")
	if [[ -n $pmpid ]] && alive "$pmpid" postgres; then
		log "$name: already running on 127.0.0.1:$port"
	else
		# After a kill or crash, postgres would take the dead (or zombie) pid in
		# postmaster.pid and in the socket's lock file for a live postmaster and
		# refuse to start: drop both once no old backend is left.
		[[ -n $pmpid ]] && log "$name: removing stale postmaster.pid (pid $pmpid is gone)"
		local j p busy
		for ((j = 0; j < 60; j++)); do
			busy=""
			for p in /proc/[0-9]*; do
				[[ $(readlink "$p/cwd" 2>/dev/null) == "$dir" ]] && alive "${p#/proc/}" && busy=${p#/proc/}
			done
			[[ -z $busy ]] && break
			sleep 0.5
		done
		[[ -z $busy ]] || fail "$name" "$logfile" "old backend pid $busy still uses $dir after 30 s"
		rm -f "$dir/postmaster.pid" "$dir"/.s.PGSQL.*
		log "$name: starting on 127.0.0.1:$port (log $logfile)"
		# pg_ctl detaches the postmaster with its output in $logfile.
		if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir" -l "$logfile" -w -t 120 start \
			</dev/null >>"$logfile" 2>&1 9>&-; then
			fail "$name" "$logfile" "pg_ctl start failed (port $port)"
		fi
	fi

	local i
	for ((i = 0; i < 120; i++)); do
		if PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -At \
			-h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; then
			break
		fi
		sleep 0.5
	done
	((i < 120)) || fail "$name" "$logfile" "no password login on 127.0.0.1:$port after 60 s"
	local got
	got=$(PGPASSWORD=$PG_PASSWORD "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'show wal_level')
	[[ $got == "$wal_level" ]] || fail "$name" "$logfile" "wal_level is $got, want $wal_level (restart it: bash integration/services/down.sh)"
	log "$name: ready (wal_level=$got)"
}

# ---------------------------------------------------------------- MariaDB

# mariadb_up NAME PORT: one mariadbd with its own datadir, socket and log.
# "mariadb" is the shared CDC server; the others are small bad-input servers
# with a binlog setup tributary must refuse (only the bad-input tests use them).
mariadb_up() {
	local name=$1 port=$2
	local dir=$ROOT/$name logfile=$ROOT/$name.log
	local cnf=$dir/my.cnf sock=$dir/mariadb.sock pidfile=$dir/mariadb.pid
	local binlog
	case $name in
	mariadb)
		binlog="innodb_buffer_pool_size = 256M
max_connections = 300
log_bin = mariadb-bin
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL" ;;
	mariadb-nobinlog)
		binlog="innodb_buffer_pool_size = 16M
max_connections = 50
performance_schema = OFF
innodb_log_file_size = 8M
skip-log-bin
binlog_format = ROW
binlog_row_image = FULL" ;;
	mariadb-badbinlog)
		binlog="innodb_buffer_pool_size = 16M
max_connections = 50
performance_schema = OFF
innodb_log_file_size = 8M
log_bin = mariadb-bin
binlog_format = STATEMENT
binlog_row_image = MINIMAL" ;;
	*) fail "$name" "" "unknown MariaDB instance" ;;
	esac
	mkdir -p "$dir"
	chown mysql: "$dir"
	touch "$logfile"
	chown mysql: "$logfile"

	# --defaults-file keeps Debian's /etc/mysql (port 3306, its own datadir) out of it.
	cat >"$cnf" <<EOF
# written by integration/services/up.sh
[client-server]
socket = $sock
port = $port

[mariadbd]
user = mysql
datadir = $dir/data
pid-file = $pidfile
log-error = $logfile
bind-address = 127.0.0.1
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
$binlog
server_id = 1
gtid_strict_mode = ON
binlog_expire_logs_seconds = 172800
EOF

	if [[ ! -d $dir/data/mysql ]]; then
		log "$name: mariadb-install-db into $dir/data"
		rm -rf "$dir/data" "$dir/data.init"
		# The scratch dir keeps an interrupted install from passing for a good one.
		if ! mariadb-install-db --defaults-file="$cnf" --user=mysql --datadir="$dir/data.init" \
			--skip-test-db >>"$logfile" 2>&1 9>&-; then
			fail "$name" "$logfile" "mariadb-install-db failed"
		fi
		mv "$dir/data.init" "$dir/data"
	fi

	if mariadb-admin --defaults-file="$cnf" --protocol=socket -uroot --connect-timeout=3 ping >/dev/null 2>&1; then
		log "$name: already running on 127.0.0.1:$port"
	else
		local pid i
		pid=$(cat "$pidfile" 2>/dev/null || true)
		if alive "$pid" mariadbd; then
			# Alive but not answering yet: crash recovery, or a start racing us.
			log "$name: waiting for running mariadbd pid $pid"
		else
			log "$name: starting on 127.0.0.1:$port (log $logfile)"
			detach "$dir/launch.pid" "$logfile" /usr/sbin/mariadbd --defaults-file="$cnf" ||
				fail "$name" "$logfile" "could not launch mariadbd"
			pid=$(cat "$dir/launch.pid")
		fi
		for ((i = 0; i < 240; i++)); do
			if mariadb-admin --defaults-file="$cnf" --protocol=socket -uroot --connect-timeout=3 ping >/dev/null 2>&1; then
				break
			fi
			alive "$pid" || fail "$name" "$logfile" "mariadbd exited during startup"
			sleep 0.5
		done
		((i < 240)) || fail "$name" "$logfile" "mariadbd did not answer on $sock after 120 s"
	fi

	# root over the socket authenticates by unix_socket (we are root), which
	# lets this set the TCP password idempotently on every run.
	if ! mariadb --defaults-file="$cnf" --protocol=socket -uroot >>"$logfile" 2>&1 <<EOF; then
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$MY_PASSWORD');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '$MY_PASSWORD';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$MY_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
EOF
		fail "$name" "$logfile" "setting the root password failed"
	fi
	local got
	if ! got=$(mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -uroot -p"$MY_PASSWORD" -N -B \
		-e 'select @@log_bin, @@binlog_format, @@binlog_row_image, @@version' 2>&1); then
		fail "$name" "$logfile" "TCP login as root on 127.0.0.1:$port failed: $got"
	fi
	log "$name: ready (log_bin, format, image, version: $(tr '\t' ' ' <<<"$got"))"
}

# ---------------------------------------------------------------- Kafka

kafka_up() {
	local dir=$ROOT/kafka logfile=$ROOT/kafka.log
	local libs=$dir/libs props=$dir/server.properties pidfile=$dir/kafka.pid
	mkdir -p "$dir"

	# Jars: fetched once per pom content; ~/.m2 makes a refetch cheap anyway.
	local pomsum
	pomsum=$(sha256sum "$SCRIPT_DIR/kafka/pom.xml" | cut -d' ' -f1)
	if [[ ! -f $libs/.complete || $(cat "$libs/.complete") != "$pomsum" ]]; then
		log "kafka: fetching broker jars from Maven Central (mvn dependency:copy-dependencies)"
		rm -rf "$dir/build" "$libs.new"
		mkdir -p "$dir/build"
		# Built outside the repo so no target/ lands in the work tree.
		cp "$SCRIPT_DIR/kafka/pom.xml" "$dir/build/pom.xml"
		if ! (cd "$dir/build" && mvn -B -q dependency:copy-dependencies \
			-DincludeScope=runtime -DoutputDirectory="$libs.new") >"$ROOT/kafka-mvn.log" 2>&1 9>&-; then
			fail kafka "$ROOT/kafka-mvn.log" "mvn dependency:copy-dependencies failed"
		fi
		echo "$pomsum" >"$libs.new/.complete"
		rm -rf "$libs"
		mv "$libs.new" "$libs"
	fi

	cat >"$props" <<EOF
# written by integration/services/up.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=false
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
# After a kill -9 the broker cannot re-register until its old session expires
# (9 s by default); a short session makes that restart quick.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
EOF
	cat >"$dir/log4j2.properties" <<'EOF'
# written by integration/services/up.sh: everything to stdout, which goes to kafka.log
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF

	local java_opts=(-Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
		"-Dlog4j2.configurationFile=$dir/log4j2.properties")

	local oldpid
	oldpid=$(cat "$pidfile" 2>/dev/null || true)
	if alive "$oldpid" java && "$KCAT" -L -b "127.0.0.1:$KAFKA_PORT" -m 5 >/dev/null 2>&1; then
		log "kafka: already running on 127.0.0.1:$KAFKA_PORT"
		return
	fi
	if alive "$oldpid" java; then
		# A broker of ours that is alive but does not answer: replace it.
		log "kafka: pid $oldpid does not answer; restarting it"
		kill "$oldpid" 2>/dev/null || true
		local j
		for ((j = 0; j < 60; j++)); do
			alive "$oldpid" || break
			sleep 0.5
		done
		alive "$oldpid" && kill -9 "$oldpid" 2>/dev/null
	fi

	if [[ ! -f $dir/data/meta.properties ]]; then
		local cluster_id
		# A Kafka cluster id is 16 random bytes, base64url without padding.
		cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
		log "kafka: formatting storage in $dir/data (cluster id $cluster_id)"
		rm -rf "$dir/data"
		if ! java "${java_opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format \
			-t "$cluster_id" -c "$props" >>"$logfile" 2>&1 9>&-; then
			rm -rf "$dir/data"
			fail kafka "$logfile" "kafka-storage format failed"
		fi
	fi

	log "kafka: starting on 127.0.0.1:$KAFKA_PORT (log $logfile)"
	echo "==== $(date -Is) starting kafka.Kafka" >>"$logfile"
	detach "$pidfile" "$logfile" java "${java_opts[@]}" -cp "$libs/*" kafka.Kafka "$props" ||
		fail kafka "$logfile" "could not launch kafka.Kafka"
	local pid i
	pid=$(cat "$pidfile")
	for ((i = 0; i < 240; i++)); do
		alive "$pid" || fail kafka "$logfile" "kafka.Kafka exited during startup"
		if "$KCAT" -L -b "127.0.0.1:$KAFKA_PORT" -m 5 2>/dev/null | grep -q '1 brokers'; then
			break
		fi
		sleep 0.5
	done
	((i < 240)) || fail kafka "$logfile" "broker did not answer metadata on 127.0.0.1:$KAFKA_PORT after 120 s"
	log "kafka: ready"
}

# ---------------------------------------------------------------- go

start=$SECONDS
# TRIBUTARY_SERVICES picks a subset (the quickstart needs only "pg").
want=" ${TRIBUTARY_SERVICES:-pg mariadb kafka} "
if [[ $want == *" pg "* ]]; then
	pg_instance pg "$PG_PORT" logical
	pg_instance pg-nological "$PG_NOLOGICAL_PORT" replica
fi
if [[ $want == *" mariadb "* ]]; then
	mariadb_up mariadb "$MY_PORT"
	mariadb_up mariadb-nobinlog "$MY_NOBINLOG_PORT"
	mariadb_up mariadb-badbinlog "$MY_BADBINLOG_PORT"
fi
if [[ $want == *" kafka "* ]]; then kafka_up; fi

tmp=$(mktemp "$ROOT/env.sh.XXXXXX")
cat >"$tmp" <<EOF
# written by integration/services/up.sh; source it before running the tests
export TRIBUTARY_SERVICES_DIR='$ROOT'
export TRIBUTARY_TEST_PG_URL='postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres?sslmode=disable'
export TRIBUTARY_TEST_PG_NOLOGICAL_URL='postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_NOLOGICAL_PORT/postgres?sslmode=disable'
export TRIBUTARY_TEST_MYSQL_URL='root:$MY_PASSWORD@tcp(127.0.0.1:$MY_PORT)/'
export TRIBUTARY_TEST_MYSQL_NOBINLOG_URL='root:$MY_PASSWORD@tcp(127.0.0.1:$MY_NOBINLOG_PORT)/'
export TRIBUTARY_TEST_MYSQL_BADBINLOG_URL='root:$MY_PASSWORD@tcp(127.0.0.1:$MY_BADBINLOG_PORT)/'
export TRIBUTARY_TEST_KAFKA_BROKERS='127.0.0.1:$KAFKA_PORT'
export TRIBUTARY_KCAT='$KCAT'
export TRIBUTARY_PG_BIN='$PG_BIN'
EOF
chmod 644 "$tmp"
mv "$tmp" "$ROOT/env.sh"
log "all services ready in $((SECONDS - start)) s; source $ROOT/env.sh"
