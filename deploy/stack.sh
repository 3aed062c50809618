#!/usr/bin/env bash
# The local production stack: Trino (Iceberg connector) + Nessie (in-memory), on loopback.
#
#   deploy/stack.sh fetch     download once (Maven Central, with mvn) into the cache; no start
#   deploy/stack.sh up        fetch if needed, write the config, start Nessie and Trino, wait
#   deploy/stack.sh down      stop what `up` started (by pid file), nothing else
#   deploy/stack.sh status    exit 0 when both answer, 3 when not
#   deploy/stack.sh production-config DIR
#                             render the S3 production catalog file into DIR
#
# Downloads go to $ASGARD_CACHE (default ~/.cache/asgard), never into the repository. Run state
# (config, pid files, logs, Trino's data dir and the Iceberg files) goes to $ASGARD_STACK_DIR
# (default <repo>/var/stack, ignored by git); `up` starts from an empty warehouse, because the
# Nessie it starts keeps its commits in memory only.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"

TRINO_VERSION="${TRINO_VERSION:-476}"
NESSIE_VERSION="${NESSIE_VERSION:-0.104.1}"   # also in deploy/nessie/pom.xml
CACHE="${ASGARD_CACHE:-$HOME/.cache/asgard}"
STACK="${ASGARD_STACK_DIR:-$ROOT/var/stack}"
TRINO_PORT="${TRINO_PORT:-8080}"
TRINO_HTTPS_PORT="${TRINO_HTTPS_PORT:-8443}"
NESSIE_PORT="${NESSIE_PORT:-19120}"
TRINO_HEAP="${TRINO_HEAP:-3G}"
TIMEOUT_S="${ASGARD_STACK_TIMEOUT:-240}"
# Trino 476 needs Java 24 or newer; Nessie runs on 17 or newer (17 starts it faster).
TRINO_JAVA_HOME="${TRINO_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
if [ -z "${NESSIE_JAVA_HOME:-}" ]; then
  if [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/javac ]; then
    NESSIE_JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
  else
    NESSIE_JAVA_HOME="$TRINO_JAVA_HOME"
  fi
fi

M2="$CACHE/m2"
TRINO_HOME="$CACHE/trino-server-$TRINO_VERSION"
NESSIE_HOME="$CACHE/nessie-$NESSIE_VERSION"
TRINO_PID="$STACK/trino.pid"
NESSIE_PID="$STACK/nessie.pid"
NESSIE_LOG="$STACK/nessie.log"
TRINO_LOG="$STACK/trino-data/var/log/server.log"
TRINO_LAUNCHER_LOG="$STACK/trino-data/var/log/launcher.log"

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

mvn_get() { # group:artifact:version:type — into the cache's own Maven repository
  mvn -B -q -Dmaven.repo.local="$M2" dependency:get -Dtransitive=false -Dartifact="$1" >/dev/null ||
    die "mvn could not fetch $1 from Maven Central (is the registry reachable?)"
}

fetch() {
  command -v mvn >/dev/null || die "mvn is not installed: apt-get install -y maven"
  [ -x "$TRINO_JAVA_HOME/bin/java" ] ||
    die "no JDK at TRINO_JAVA_HOME=$TRINO_JAVA_HOME; Trino $TRINO_VERSION needs Java 24+ (Temurin 25)"
  mkdir -p "$CACHE"
  if [ ! -f "$TRINO_HOME/.complete" ]; then
    say "fetching Trino $TRINO_VERSION (server core + Iceberg plugin) with mvn into $CACHE"
    mvn_get "io.trino:trino-server-core:$TRINO_VERSION:tar.gz"
    mvn_get "io.trino:trino-iceberg:$TRINO_VERSION:zip"
    local tmp="$TRINO_HOME.partial"
    rm -rf "$tmp" && mkdir -p "$tmp"
    tar -xzf "$M2/io/trino/trino-server-core/$TRINO_VERSION/trino-server-core-$TRINO_VERSION.tar.gz" \
      -C "$tmp" --strip-components=1
    (cd "$tmp/plugin" && unzip -q "$M2/io/trino/trino-iceberg/$TRINO_VERSION/trino-iceberg-$TRINO_VERSION.zip" &&
      mv "trino-iceberg-$TRINO_VERSION" iceberg)
    touch "$tmp/.complete"
    rm -rf "$TRINO_HOME" && mv "$tmp" "$TRINO_HOME"
    # Unpacked now: the archives would only double the disk used (about 540 MB).
    rm -f "$M2/io/trino/trino-server-core/$TRINO_VERSION/"*.tar.gz "$M2/io/trino/trino-iceberg/$TRINO_VERSION/"*.zip
  fi
  if [ ! -f "$NESSIE_HOME/.complete" ]; then
    say "fetching Nessie $NESSIE_VERSION (REST services + in-memory store) with mvn into $CACHE"
    local tmp="$NESSIE_HOME.partial"
    rm -rf "$tmp" && mkdir -p "$tmp/lib"
    mvn -B -q -Dmaven.repo.local="$M2" -f "$HERE/nessie/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$tmp/lib" >/dev/null ||
      die "mvn could not fetch Nessie's jars (deploy/nessie/pom.xml)"
    touch "$tmp/.complete"
    rm -rf "$NESSIE_HOME" && mv "$tmp" "$NESSIE_HOME"
  fi
  # The launcher is ours: (re)compile it when it is newer than its classes.
  local src="$HERE/nessie/NessieLocal.java" classes="$NESSIE_HOME/classes"
  if [ ! -f "$classes/NessieLocal.class" ] || [ "$src" -nt "$classes/NessieLocal.class" ]; then
    rm -rf "$classes" && mkdir -p "$classes"
    "$NESSIE_JAVA_HOME/bin/javac" --release 17 -nowarn -d "$classes" -cp "$NESSIE_HOME/lib/*" "$src" ||
      die "could not compile deploy/nessie/NessieLocal.java with $NESSIE_JAVA_HOME"
  fi
}

alive() { # pid file -> 0 if that process runs and is one of ours (its command line names the stack)
  local file="$1" pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$STACK"
}

trino_ready() { curl -sf --max-time 2 "http://127.0.0.1:$TRINO_PORT/v1/info" | grep -q '"starting":false'; }
nessie_ready() { curl -sf --max-time 2 "http://127.0.0.1:$NESSIE_PORT/api/v2/config" | grep -q '"defaultBranch"'; }
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

render() { # template -> file, filling in this stack's values
  sed -e "s#@STACK_DIR@#$STACK#g" -e "s#@WAREHOUSE_DIR@#$STACK/warehouse#g" \
    -e "s#@TRINO_PORT@#$TRINO_PORT#g" -e "s#@NESSIE_PORT@#$NESSIE_PORT#g" \
    -e "s#@TRINO_HTTPS_PORT@#$TRINO_HTTPS_PORT#g" -e "s#@SHARED_SECRET@#${SHARED_SECRET:-}#g" \
    -e "s#@TRINO_HEAP@#$TRINO_HEAP#g" "$1" >"$2"
}

pbkdf2() { # password -> the PBKDF2 entry Trino's password file takes (iterations:salt:hash, hex)
  python3 -c 'import hashlib, os, sys
salt = os.urandom(16)
key = hashlib.pbkdf2_hmac("sha1", sys.argv[1].encode(), salt, 1000, dklen=64)  # what Trino verifies
print(f"1000:{salt.hex()}:{key.hex()}")' "$1"
}

credentials() { # a self-signed certificate for HTTPS and a password per service user, new at each `up`
  command -v openssl >/dev/null || die "openssl is not installed: apt-get install -y openssl"
  mkdir -p "$STACK/etc/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$STACK/etc/tls/key.pem" -out "$STACK/etc/tls/cert.pem" 2>/dev/null ||
    die "openssl could not make the stack's certificate"
  cat "$STACK/etc/tls/key.pem" "$STACK/etc/tls/cert.pem" >"$STACK/etc/tls/trino.pem"  # Trino's keystore
  chmod 600 "$STACK/etc/tls/key.pem" "$STACK/etc/tls/trino.pem"
  local user secret
  : >"$STACK/etc/password.db"
  for user in portal other-service; do
    secret="$(openssl rand -hex 24)"
    (umask 077 && printf '%s\n' "$secret" >"$STACK/etc/$user.password")
    printf '%s:%s\n' "$user" "$(pbkdf2 "$secret")" >>"$STACK/etc/password.db"
  done
}

configure() {
  rm -rf "$STACK/etc" "$STACK/warehouse" "$STACK/trino-data/var/log"
  mkdir -p "$STACK/etc/catalog" "$STACK/warehouse" "$STACK/trino-data"
  credentials
  SHARED_SECRET="$(openssl rand -hex 32)"  # between Trino's own nodes, required once clients sign in
  local f
  for f in node.properties jvm.config config.properties log.properties access-control.properties rules.json \
    password-authenticator.properties group-provider.properties groups.txt; do
    render "$HERE/trino/local/$f" "$STACK/etc/$f"
  done
  chmod 600 "$STACK/etc/config.properties"
  render "$HERE/trino/local/catalog/nessie.properties" "$STACK/etc/catalog/nessie.properties"
}

tail_logs() {
  local f
  for f in "$NESSIE_LOG" "$TRINO_LAUNCHER_LOG" "$TRINO_LOG"; do
    [ -f "$f" ] && { echo "----- last lines of $f"; tail -n 25 "$f"; }
  done
  return 0
}

up() {
  if alive "$TRINO_PID" && alive "$NESSIE_PID" && trino_ready && nessie_ready; then
    say "already running (Trino http://127.0.0.1:$TRINO_PORT, Nessie http://127.0.0.1:$NESSIE_PORT/api/v2)"
    return 0
  fi
  if alive "$TRINO_PID" || alive "$NESSIE_PID"; then
    say "a previous stack is half up; stopping it first"
    down
  fi
  local port
  for port in "$TRINO_PORT" "$TRINO_HTTPS_PORT" "$NESSIE_PORT"; do
    port_taken "$port" && die "port $port on 127.0.0.1 is already in use by another program; stop it or set TRINO_PORT / TRINO_HTTPS_PORT / NESSIE_PORT"
  done
  fetch
  configure
  local started
  started=$(date +%s.%N)
  say "starting Nessie $NESSIE_VERSION (in-memory) on 127.0.0.1:$NESSIE_PORT"
  setsid "$NESSIE_JAVA_HOME/bin/java" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dasgard.stack="$STACK" -cp "$NESSIE_HOME/lib/*:$NESSIE_HOME/classes" \
    NessieLocal 127.0.0.1 "$NESSIE_PORT" >"$NESSIE_LOG" 2>&1 </dev/null &
  echo $! >"$NESSIE_PID"
  say "starting Trino $TRINO_VERSION on 127.0.0.1:$TRINO_PORT (heap $TRINO_HEAP, Java at $TRINO_JAVA_HOME)"
  JAVA_HOME="$TRINO_JAVA_HOME" "$TRINO_HOME/bin/launcher" start \
    --etc-dir="$STACK/etc" --data-dir="$STACK/trino-data" --pid-file="$TRINO_PID" \
    --jvm-dir="$TRINO_JAVA_HOME" >/dev/null ||
    { tail_logs; down; die "Trino's launcher could not start it"; }
  local deadline=$((SECONDS + TIMEOUT_S))
  until nessie_ready && trino_ready; do
    if ! alive "$NESSIE_PID" || ! alive "$TRINO_PID"; then
      tail_logs; down; die "a server exited while starting (logs above)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail_logs; down; die "not ready within ${TIMEOUT_S}s (raise ASGARD_STACK_TIMEOUT on a slow machine)"
    fi
    sleep 1
  done
  local took
  took=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  echo "$took" >"$STACK/last-start-seconds"
  say "up in ${took}s: Trino http://127.0.0.1:$TRINO_PORT and https://127.0.0.1:$TRINO_HTTPS_PORT (passwords in $STACK/etc/*.password, CA $STACK/etc/tls/cert.pem; catalog nessie), Nessie http://127.0.0.1:$NESSIE_PORT/api/v2"
}

stop_pid() { # name pid-file
  local name="$1" file="$2" pid target
  if ! alive "$file"; then
    rm -f "$file"
    return 0
  fi
  pid="$(cat "$file")"
  # Both servers lead a process group of their own (setsid, Trino's launcher): signal the group,
  # so nothing they started outlives them; a pid that leads no group is signalled alone.
  target="$pid"
  [ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ] && target="-$pid"
  say "stopping $name (pid $pid)"
  kill -TERM -- "$target" 2>/dev/null || true
  local i
  for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop within 30s; killing it (pid $pid)"
    kill -KILL -- "$target" 2>/dev/null || true
  fi
  rm -f "$file"
}

down() {
  stop_pid Trino "$TRINO_PID"
  stop_pid Nessie "$NESSIE_PID"
  say "stopped"
}

status() {
  local ok=0
  if alive "$NESSIE_PID" && nessie_ready; then
    say "Nessie: up, http://127.0.0.1:$NESSIE_PORT/api/v2 (pid $(cat "$NESSIE_PID"))"
  else
    say "Nessie: down"; ok=3
  fi
  if alive "$TRINO_PID" && trino_ready; then
    say "Trino:  up, http://127.0.0.1:$TRINO_PORT (pid $(cat "$TRINO_PID"))"
  elif alive "$TRINO_PID"; then
    say "Trino:  starting (pid $(cat "$TRINO_PID"))"; ok=3
  else
    say "Trino:  down"; ok=3
  fi
  return $ok
}

dbt_var() { # name -> value of a var in dbt/dbt_project.yml
  sed -n "s/^[[:space:]]*$1:[[:space:]]*\"\{0,1\}\([^\"]*\)\"\{0,1\}[[:space:]]*$/\1/p" "$ROOT/dbt/dbt_project.yml" | head -n 1
}

production_config() {
  local out="${1:?usage: stack.sh production-config DIR}"
  local nessie_uri="${NESSIE_URI:-$(dbt_var nessie_uri)}" warehouse="${ICEBERG_WAREHOUSE:-$(dbt_var iceberg_warehouse)}"
  mkdir -p "$out/catalog"
  sed -e "s#@NESSIE_URI@#$nessie_uri#g" -e "s#@ICEBERG_WAREHOUSE@#$warehouse#g" \
    "$HERE/trino/production/catalog/nessie.properties" >"$out/catalog/nessie.properties"
  say "wrote $out/catalog/nessie.properties (Nessie $nessie_uri, warehouse $warehouse)"
}

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  status) status ;;
  production-config) production_config "${2:-}" ;;
  *)
    echo "usage: $0 up|down|status|fetch|production-config DIR" >&2
    exit 2
    ;;
esac
