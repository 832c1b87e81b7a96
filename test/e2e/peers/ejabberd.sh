#!/bin/bash
# ejabberd 23.01 in the foreground (ejabberdctl foreground), mnesia, no epmd (fixed dist port on loopback).
# The component is registered by the operators' snippet etc/ejabberd/xsgw.yml, copied with only its
# placeholders replaced and named in ejabberd.yml's include_config_file (its listener joins c2s's).
# usage: ejabberd.sh start|stop|pid|adduser USER PASS     env: PEERS, EJ_IP (127.0.0.13)
#   pid: prints the pid of the process that holds the component port (beam.smp)
# Logs: $PEERS/ejabberd/{stdout.log,logs/ejabberd.log}; an earlier run's dir is kept as ejabberd.N.
# ejabberdctl run as root switches to the user 'ejabberd': $PEERS must be reachable by that user.
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
D=$PEERS/ejabberd; IP=${EJ_IP:-127.0.0.13}; DOM=$XMPP_DOMAIN; COMP=$COMP_DOMAIN; SECRET=$COMP_SECRET
DIST_PORT=5210
EJ=(ejabberdctl --config "$D/ejabberd.yml" --ctl-config "$D/ejabberdctl.cfg" --logs "$D/logs" --spool "$D/spool")
case "${1:-}" in
start)
  need ejabberdctl ss setsid runuser
  id ejabberd >/dev/null 2>&1 || die "user 'ejabberd' does not exist (is the ejabberd package installed?)"
  [ "$(id -u)" = 0 ] || die "must run as root: ejabberdctl switches to the user 'ejabberd'"
  alive "$D/ejabberd.bg" && die "ejabberd already running from $D (run '$0 stop' first)"
  port_free "$IP" "$COMP_PORT"; port_free "$IP" "$C2S_PORT"; port_free 127.0.0.1 "$DIST_PORT"
  fresh_dir "$D"; mkdir -p "$D"/{spool,logs}
  use_snippet "$SNIPPETS/ejabberd/xsgw.yml" "$D/xsgw.yml" COMPONENT="$COMP" HOST="$IP" PORT="$COMP_PORT" SECRET="$SECRET"
  cat > "$D/ejabberd.yml" <<X
loglevel: info
log_rotate_count: 0
hosts:
  - $DOM
certfiles: []
listen:
  -
    port: $C2S_PORT
    ip: "$IP"
    module: ejabberd_c2s
    starttls: false
    starttls_required: false
    access: c2s
include_config_file: $D/xsgw.yml
auth_method: internal
auth_password_format: plain
default_db: mnesia
s2s_access: s2s
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  register:
    allow: all
  s2s:
    deny: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
shaper_rules:
  max_user_sessions: 10
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_offline: {}
  mod_register:
    access: register
    ip_access: all
    password_strength: 0
X
  cat > "$D/ejabberdctl.cfg" <<X
ERL_DIST_PORT=$DIST_PORT
INET_DIST_INTERFACE=127.0.0.1
ERLANG_NODE=ejabberd@localhost
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_PID_PATH=$D/ejabberd.pid
EJABBERD_BYPASS_WARNINGS=true
X
  chown -R ejabberd:ejabberd "$D"
  runuser -u ejabberd -- test -w "$D/spool" \
    || die "user 'ejabberd' cannot write $D (a parent directory is not searchable by it; choose PEERS elsewhere or chmod o+x the parents)"
  t0=$(now_ms)
  start_bg "$D/ejabberd.bg" "$D/stdout.log" "${EJ[@]}" foreground   # group: ejabberdctl, su, sh; beam.smp has its own session
  { wait_tcp "$IP" "$C2S_PORT" 30 && wait_tcp "$IP" "$COMP_PORT" 30; } \
    || { "$0" stop; die "ejabberd did not come up (see $D/stdout.log, $D/logs/ejabberd.log)"; }
  ( for u in alice bob erin frank; do "${EJ[@]}" register "$u" "$DOM" "${u}pw" || exit 1; done ) > "$D/register.log" 2>&1 \
    || { "$0" stop; die "ejabberdctl register failed (see $D/register.log)"; }
  echo "ejabberd ready on $IP (c2s $C2S_PORT, component $COMP_PORT) in $(since "$t0")s; logs in $D"
  ;;
adduser) "${EJ[@]}" register "$2" "$DOM" "$3" ;;
stop)
  # ejabberdctl runs beam via `su -c`, which puts it in a NEW session: signal beam.smp by its own pid
  # (ejabberd writes it to EJABBERD_PID_PATH); SIGTERM = clean shutdown in ~1 s; the wrappers exit with it
  bp=""; [ -f "$D/ejabberd.pid" ] && bp=$(cat "$D/ejabberd.pid")
  [ -n "$bp" ] && { kill -TERM "$bp" 2>/dev/null; kill -CONT "$bp" 2>/dev/null; }
  STOP_WAIT=5 stop_bg "$D/ejabberd.bg"
  [ -n "$bp" ] && kill -0 "$bp" 2>/dev/null && kill -KILL "$bp" 2>/dev/null
  rm -f "$D/ejabberd.pid"; exit 0 ;;
pid)
  if [ -f "$D/ejabberd.pid" ] && kill -0 "$(cat "$D/ejabberd.pid")" 2>/dev/null; then cat "$D/ejabberd.pid"
  else die "ejabberd is not running from $D"; fi ;;
*) echo "usage: $0 start|stop|pid|adduser U P" >&2; exit 2 ;;
esac
