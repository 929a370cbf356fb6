#!/usr/bin/env bash
# Real Debezium on Kafka Connect, for the differential test against Debezium
# (integration/debezium_diff_test.go) and the Debezium benchmarks. Fetched only
# when one of them asks, cached under /tmp/tributary-services/debezium.
#
#   debezium.sh fetch
#       Fetches Kafka Connect 4.3.0 (the Kafka version Debezium 3.6.1 is built
#       against), the Debezium 3.6.1 PostgreSQL and MySQL connectors and the
#       MariaDB connector 3.5.0.Final (the newest on Maven Central; see
#       debezium/debezium-mariadb-pom.xml) from Maven Central, once per pom
#       content, each connector family in a plugin directory of its own. Idempotent; concurrent runs serialise on a lock.
#   debezium.sh start WORKDIR REST_PORT WORKER_EXTRA CONNECTOR.properties...
#       Fetches if needed, writes WORKDIR/worker.properties (JsonConverter with
#       schemas for key and value, offsets in WORKDIR/offsets, REST on
#       127.0.0.1:REST_PORT, plugin.path = the Debezium jars) plus the lines of
#       the file WORKER_EXTRA (or "-" for none), and runs ConnectStandalone in
#       the foreground (exec: the caller's pid is the JVM's), logging to stdout.
#       Brokers: $DEBEZIUM_BROKERS, else $TRIBUTARY_TEST_KAFKA_BROKERS, else
#       127.0.0.1:19092. JVM options: $DEBEZIUM_JAVA_OPTS adds to the defaults.
set -euo pipefail

ROOT=/tmp/tributary-services/debezium
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONNECT_LIBS=$ROOT/connect-libs
PLUGIN_DIR=$ROOT/plugins
DBZ_LIBS=$PLUGIN_DIR/debezium
DBZ_MARIADB_LIBS=$PLUGIN_DIR/debezium-mariadb

log() { printf 'debezium.sh: %s\n' "$*" >&2; }

# fetch_libs NAME POM DEST [MVN ARGS...]: copies POM's runtime dependencies to
# DEST unless DEST/.complete holds POM's checksum (~/.m2 makes a refetch cheap).
fetch_libs() {
	local name=$1 pom=$2 dest=$3 sum
	shift 3
	sum=$(sha256sum "$pom" | cut -d' ' -f1)
	if [[ -f $dest/.complete && $(cat "$dest/.complete") == "$sum" ]]; then
		return 0
	fi
	log "$name: fetching jars from Maven Central (mvn dependency:copy-dependencies)"
	rm -rf "$ROOT/build-$name" "$dest.new"
	mkdir -p "$ROOT/build-$name"
	cp "$pom" "$ROOT/build-$name/pom.xml"
	if ! (cd "$ROOT/build-$name" && timeout 900 mvn -B -q dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$dest.new" "$@") >"$ROOT/$name-mvn.log" 2>&1 9>&-; then
		log "ERROR: $name: mvn dependency:copy-dependencies failed; last lines of $ROOT/$name-mvn.log:"
		tail -n 30 "$ROOT/$name-mvn.log" >&2
		exit 1
	fi
	echo "$sum" >"$dest.new/.complete"
	rm -rf "$dest"
	mv "$dest.new" "$dest"
}

fetch() {
	command -v mvn >/dev/null || { log "ERROR: mvn not found (apt-get install maven)"; exit 1; }
	command -v java >/dev/null || { log "ERROR: java not found"; exit 1; }
	mkdir -p "$ROOT" "$PLUGIN_DIR"
	exec 9>"$ROOT/.lock"
	if ! flock -w 900 9; then
		log "ERROR: another debezium.sh held $ROOT/.lock for 15 minutes"
		exit 1
	fi
	fetch_libs connect "$SCRIPT_DIR/debezium/connect-pom.xml" "$CONNECT_LIBS"
	# Kafka's own packages and slf4j come from the worker's class path: Connect
	# loads org.apache.kafka.* from its parent loader anyway, and a second slf4j
	# API in the plugin would bind to no logger.
	fetch_libs debezium "$SCRIPT_DIR/debezium/debezium-pom.xml" "$DBZ_LIBS" \
		-DexcludeGroupIds=org.apache.kafka,org.slf4j
	fetch_libs debezium-mariadb "$SCRIPT_DIR/debezium/debezium-mariadb-pom.xml" "$DBZ_MARIADB_LIBS" \
		-DexcludeGroupIds=org.apache.kafka,org.slf4j
	exec 9>&-
}

start() {
	if (($# < 3)); then
		log "usage: debezium.sh start WORKDIR REST_PORT WORKER_EXTRA|- CONNECTOR.properties..."
		exit 2
	fi
	local work=$1 port=$2 extra=$3
	shift 3
	fetch
	mkdir -p "$work"
	local brokers=${DEBEZIUM_BROKERS:-${TRIBUTARY_TEST_KAFKA_BROKERS:-127.0.0.1:19092}}
	case $brokers in
	127.* | localhost:* | \[::1\]:*) ;;
	*) log "ERROR: brokers $brokers are not on loopback"; exit 2 ;;
	esac
	cat >"$work/worker.properties" <<PROPS
# written by integration/services/debezium.sh
bootstrap.servers=$brokers
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename=$work/offsets
offset.flush.interval.ms=1000
plugin.path=$PLUGIN_DIR
plugin.discovery=only_scan
listeners=http://127.0.0.1:$port
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$port
PROPS
	if [[ $extra != - ]]; then
		cat "$extra" >>"$work/worker.properties"
	fi
	cat >"$work/log4j2.properties" <<'PROPS'
# written by integration/services/debezium.sh: everything to stdout
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
PROPS
	# shellcheck disable=SC2206
	local java_opts=(-Xms128m -Xmx1g -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError
		-Djava.awt.headless=true "-Dlog4j2.configurationFile=$work/log4j2.properties"
		${DEBEZIUM_JAVA_OPTS:-})
	echo "==== $(date -Is) starting ConnectStandalone (REST 127.0.0.1:$port, work $work)"
	exec java "${java_opts[@]}" -cp "$CONNECT_LIBS/*" \
		org.apache.kafka.connect.cli.ConnectStandalone "$work/worker.properties" "$@"
}

case ${1:-} in
fetch) fetch ;;
start)
	shift
	start "$@"
	;;
*)
	log "usage: debezium.sh fetch | start WORKDIR REST_PORT WORKER_EXTRA|- CONNECTOR.properties..."
	exit 2
	;;
esac
