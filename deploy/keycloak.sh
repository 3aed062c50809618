#!/usr/bin/env bash
# A local Keycloak for the SSO tests: dev mode, loopback only, realm `asgard` from tests/sso/realm.json.
#
#   deploy/keycloak.sh fetch    download once (Maven Central, with mvn) into the cache and unpack; no start
#   deploy/keycloak.sh up       fetch if needed, start Keycloak on a fresh data dir, import the realm, wait
#   deploy/keycloak.sh down     stop what `up` started (its whole process group, by pid file), nothing else
#   deploy/keycloak.sh status   exit 0 when the realm's discovery document answers, 3 when not
#
# Downloads go to $ASGARD_CACHE (default ~/.cache/asgard), never into the repository. Run state goes to
# $ASGARD_KEYCLOAK_DIR (default <repo>/var/keycloak, ignored by git): the pid file, keycloak.log and a
# home directory of the run (bin/ and conf/ copied, lib/, themes/, providers/ linked to the unpacked
# distribution, data/ its own). `up` empties data/ first, so every run starts from the realm file alone:
# the H2 dev database, the imported realm, the bootstrap admin (admin/admin, master realm) are per run.
# The first `up` after a fetch also re-augments the distribution for dev mode (about 15 s, once: kc.sh
# keeps the result in the cache's lib/quarkus).
#
#   PORTAL_KEYCLOAK_PORT      HTTP port on 127.0.0.1 (default 18080)
#   KEYCLOAK_JAVA_HOME        a JDK 21 or newer (default: Temurin 25, else the newest 21+ in /usr/lib/jvm)
#   ASGARD_KEYCLOAK_TIMEOUT   seconds `up` waits for the realm to answer (default 180)
#   JAVA_OPTS_APPEND          extra JVM options for kc.sh (default -XX:TieredStopAtLevel=1: the C1 JIT
#                             only, which starts Keycloak in about 20 s instead of about 30 s here)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"

KEYCLOAK_VERSION="${KEYCLOAK_VERSION:-26.4.7}"
CACHE="${ASGARD_CACHE:-$HOME/.cache/asgard}"
RUN="${ASGARD_KEYCLOAK_DIR:-$ROOT/var/keycloak}"
PORT="${PORTAL_KEYCLOAK_PORT:-18080}"
TIMEOUT_S="${ASGARD_KEYCLOAK_TIMEOUT:-180}"
REALM="asgard"                                  # the "realm" of tests/sso/realm.json
REALM_FILE="$ROOT/tests/sso/realm.json"
PREFERRED_JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
MIN_JAVA=21                                     # Keycloak 26 needs Java 21 or newer

M2="$CACHE/m2"
ARTIFACT="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip"
ZIP="$M2/org/keycloak/keycloak-quarkus-dist/$KEYCLOAK_VERSION/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip"
DIST="$CACHE/keycloak-$KEYCLOAK_VERSION"
KC_HOME="$RUN/home"
PID_FILE="$RUN/keycloak.pid"
LOG="$RUN/keycloak.log"
BASE_URL="http://127.0.0.1:$PORT"
DISCOVERY="$BASE_URL/realms/$REALM/.well-known/openid-configuration"

say() { printf 'keycloak: %s\n' "$*"; }
die() { printf 'keycloak: error: %s\n' "$*" >&2; exit 1; }
need() { # command, what to install
  command -v "$1" >/dev/null || die "$1 is not installed: $2"
}

fetch() {
  if [ -f "$DIST/.complete" ]; then
    return 0
  fi
  need unzip "apt-get install -y unzip"
  mkdir -p "$CACHE"
  if [ ! -f "$ZIP" ]; then
    need mvn "apt-get install -y maven"
    say "fetching Keycloak $KEYCLOAK_VERSION ($ARTIFACT, about 170 MB) with mvn into $CACHE"
    mvn -B -q -Dmaven.repo.local="$M2" dependency:get -Dtransitive=false -Dartifact="$ARTIFACT" >/dev/null ||
      die "mvn could not fetch $ARTIFACT from Maven Central (is the registry reachable?)"
    [ -f "$ZIP" ] || die "mvn reported success but $ZIP is not there"
  fi
  say "unpacking Keycloak $KEYCLOAK_VERSION into $DIST"
  local tmp="$DIST.partial"
  rm -rf "$tmp" && mkdir -p "$tmp"
  unzip -q "$ZIP" -d "$tmp" || die "could not unpack $ZIP (a broken download? delete it and fetch again)"
  [ -x "$tmp/keycloak-$KEYCLOAK_VERSION/bin/kc.sh" ] || die "$ZIP has no keycloak-$KEYCLOAK_VERSION/bin/kc.sh"
  touch "$tmp/keycloak-$KEYCLOAK_VERSION/.complete"
  rm -rf "$DIST" && mv "$tmp/keycloak-$KEYCLOAK_VERSION" "$DIST" && rmdir "$tmp"
}

java_major() { # JAVA_HOME -> its major version (0 when it is no JDK)
  local jh="$1" v=""
  [ -x "$jh/bin/java" ] || { echo 0; return; }
  [ -f "$jh/release" ] && v="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$jh/release")"
  [ -n "$v" ] || v="$("$jh/bin/java" -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p')"
  echo "${v:-0}"
}

find_java() { # -> a JAVA_HOME with Java >= MIN_JAVA, or die saying what to install
  if [ -n "${KEYCLOAK_JAVA_HOME:-}" ]; then
    [ "$(java_major "$KEYCLOAK_JAVA_HOME")" -ge "$MIN_JAVA" ] ||
      die "KEYCLOAK_JAVA_HOME=$KEYCLOAK_JAVA_HOME is not a Java $MIN_JAVA+ JDK (Keycloak $KEYCLOAK_VERSION needs $MIN_JAVA or newer)"
    echo "$KEYCLOAK_JAVA_HOME"
    return
  fi
  if [ "$(java_major "$PREFERRED_JAVA_HOME")" -ge "$MIN_JAVA" ]; then
    echo "$PREFERRED_JAVA_HOME"
    return
  fi
  local jh best="" best_v=0 v
  for jh in /usr/lib/jvm/*; do
    [ -L "$jh" ] && continue                    # the alternatives' aliases name the same JDKs
    v="$(java_major "$jh")"
    if [ "$v" -ge "$MIN_JAVA" ] && [ "$v" -gt "$best_v" ]; then best="$jh" best_v="$v"; fi
  done
  [ -n "$best" ] || die "no Java $MIN_JAVA or newer in /usr/lib/jvm (the default java may be older: \
$(java -version 2>&1 | head -n 1)); Keycloak $KEYCLOAK_VERSION needs $MIN_JAVA+: install one \
(apt-get install -y openjdk-21-jdk-headless, or Temurin 25) or set KEYCLOAK_JAVA_HOME"
  echo "$best"
}

members() { # pid file -> the pids of its session (setsid made the leader's pid the session id) that are ours
  [ -f "$PID_FILE" ] || return 0
  local sid p
  sid="$(cat "$PID_FILE")"
  [[ "$sid" =~ ^[0-9]+$ ]] || return 0
  for p in $(pgrep -s "$sid" 2>/dev/null || true); do
    { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q -- "$RUN" && echo "$p"
  done
  return 0
}
alive() { [ -n "$(members)" ]; }
ready() { curl -sf --max-time 2 "$DISCOVERY" 2>/dev/null | grep -q '"issuer"'; }
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

tail_log() {
  [ -f "$LOG" ] && { echo "----- last lines of $LOG"; tail -n 40 "$LOG"; }
  return 0
}

prepare_home() { # a home of the run: Keycloak reads data/ (and data/import) under kc.home.dir
  rm -rf "$KC_HOME"
  mkdir -p "$KC_HOME/bin" "$KC_HOME/data/import"
  cp "$DIST/bin/kc.sh" "$KC_HOME/bin/"          # a copy, not a link: kc.sh takes its home from its own path
  cp -R "$DIST/conf" "$KC_HOME/conf"
  cp "$DIST/version.txt" "$KC_HOME/"
  local d
  for d in lib themes providers; do ln -s "$DIST/$d" "$KC_HOME/$d"; done
  # --import-realm reads every <name>-realm.json of data/import.
  cp "$REALM_FILE" "$KC_HOME/data/import/$REALM-realm.json"
}

up() {
  if alive && ready; then
    say "already running: realm $REALM at $BASE_URL/realms/$REALM (pid $(cat "$PID_FILE"))"
    return 0
  fi
  if alive; then
    say "a previous Keycloak is still starting or half up; stopping it first"
    down
  fi
  need curl "apt-get install -y curl"
  need setsid "apt-get install -y util-linux"
  need pgrep "apt-get install -y procps"
  [ -f "$REALM_FILE" ] || die "no realm file at $REALM_FILE"
  port_taken "$PORT" &&
    die "port $PORT on 127.0.0.1 is already in use by another program; stop it or set PORTAL_KEYCLOAK_PORT"
  fetch
  local java_home
  java_home="$(find_java)"
  mkdir -p "$RUN"
  prepare_home
  local started
  started=$(date +%s.%N)
  say "starting Keycloak $KEYCLOAK_VERSION (dev mode) on 127.0.0.1:$PORT, Java $(java_major "$java_home") at $java_home"
  # Its own session and process group, so `down` stops kc.sh and the JVM it runs, and nothing else.
  JAVA_HOME="$java_home" JAVA_OPTS_APPEND="${JAVA_OPTS_APPEND--XX:TieredStopAtLevel=1}" \
    KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=admin \
    setsid "$KC_HOME/bin/kc.sh" start-dev --http-host=127.0.0.1 --http-port="$PORT" --import-realm \
    >"$LOG" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local deadline=$((SECONDS + TIMEOUT_S)) next=$((SECONDS + 15))
  until ready; do
    if ! alive; then
      tail_log; down; die "Keycloak exited while starting (log above, all of it in $LOG)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail_log; down; die "realm $REALM not ready within ${TIMEOUT_S}s (raise ASGARD_KEYCLOAK_TIMEOUT on a slow machine)"
    fi
    if [ $SECONDS -ge $next ]; then
      say "still starting ($((SECONDS + TIMEOUT_S - deadline))s; log: $LOG)"
      next=$((SECONDS + 15))
    fi
    sleep 0.5
  done
  local took
  took=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  echo "$took" >"$RUN/last-start-seconds"
  say "up in ${took}s: realm $REALM, issuer $BASE_URL/realms/$REALM (admin console $BASE_URL/admin, admin/admin)"
}

down() {
  local pids pid i
  pids="$(members)"
  if [ -z "$pids" ]; then
    rm -f "$PID_FILE"
    say "stopped (was not running)"
    return 0
  fi
  pid="$(cat "$PID_FILE")"
  say "stopping Keycloak (process group $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM $pids 2>/dev/null || true
  for i in $(seq 1 60); do
    alive || break
    sleep 0.5
  done
  if alive; then
    say "Keycloak did not stop within 30s; killing process group $pid"
    kill -KILL -- "-$pid" 2>/dev/null || true
    # shellcheck disable=SC2046
    kill -KILL $(members) 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  say "stopped"
}

status() {
  if ready; then
    if alive; then
      say "up: realm $REALM at $BASE_URL/realms/$REALM (pid $(cat "$PID_FILE"))"
    else
      say "up: realm $REALM answers at $BASE_URL/realms/$REALM (not started by this script)"
    fi
    return 0
  fi
  if alive; then
    say "starting: realm $REALM does not answer yet at $BASE_URL (pid $(cat "$PID_FILE"), log $LOG)"
  else
    say "down: realm $REALM does not answer at $BASE_URL"
  fi
  return 3
}

case "${1:-}" in
  fetch) fetch; say "Keycloak $KEYCLOAK_VERSION is in $DIST" ;;
  up) up ;;
  down) down ;;
  status) status ;;
  *)
    echo "usage: $0 fetch|up|down|status" >&2
    exit 2
    ;;
esac
