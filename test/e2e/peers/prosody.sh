#!/bin/bash
# Prosody 0.12 in the foreground; no TLS, no s2s; component sip.test on port 5347, registered by the
# operators' snippet etc/prosody/xsgw.cfg.lua, copied to conf.d/ with only its placeholders replaced
# and included the way Debian's prosody.cfg.lua does it (Include "conf.d/*.cfg.lua", last line).
# usage: prosody.sh start|stop|pid|adduser USER PASS     env: PEERS, PROSODY_IP (127.0.0.12)
#   pid: prints the pid of the process that holds the component port (prosody itself)
# Logs: $PEERS/prosody/{prosody.log,debug.log,stdout.log}; an earlier run's dir is kept as prosody.N.
# Prosody answers a second connection for a connected component with <conflict/>.
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
D=$PEERS/prosody; IP=${PROSODY_IP:-127.0.0.12}; DOM=$XMPP_DOMAIN; COMP=$COMP_DOMAIN; SECRET=$COMP_SECRET
CFG=$D/prosody.cfg.lua
case "${1:-}" in
start)
  need prosody prosodyctl ss setsid
  alive "$D/prosody.bg" && die "prosody already running from $D (run '$0 stop' first)"
  port_free "$IP" "$COMP_PORT"; port_free "$IP" "$C2S_PORT"
  fresh_dir "$D"; mkdir -p "$D"/{data,certs,conf.d}
  use_snippet "$SNIPPETS/prosody/xsgw.cfg.lua" "$D/conf.d/xsgw.cfg.lua" \
    COMPONENT="$COMP" HOST="$IP" PORT="$COMP_PORT" SECRET="$SECRET"
  cat > "$CFG" <<X
run_as_root = true                      -- root in CI; else prosody refuses to start
pidfile = "$D/prosody.pid"
data_path = "$D/data"
certificates = "$D/certs"               -- empty dir, silences cert errors
log = { info = "$D/prosody.log", debug = "$D/debug.log" }
interfaces = { "$IP" }
c2s_ports = { $C2S_PORT }
s2s_ports = {}; c2s_direct_tls_ports = {}; http_ports = {}; https_ports = {}
modules_enabled = { "roster", "saslauth", "disco", "ping", "register", "presence", "message", "iq" }
modules_disabled = { "s2s", "tls", "offline", "c2s_csi", "bosh", "websocket", "carbons", "pep", "vcard",
                     "uptime", "time", "version", "http" }
authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = true
min_seconds_between_registrations = 0
limits = { c2s = { rate = "100mb/s" } }

VirtualHost "$DOM"

Include "conf.d/*.cfg.lua"              -- the component, its port and address: only from the snippet
X
  ( for u in alice bob erin frank; do prosodyctl --config "$CFG" register "$u" "$DOM" "${u}pw" || exit 1; done ) \
    > "$D/register.log" 2>&1 || die "prosodyctl register failed (see $D/register.log)"
  t0=$(now_ms)
  start_bg "$D/prosody.bg" "$D/stdout.log" prosody --config "$CFG"
  { wait_tcp "$IP" "$COMP_PORT" 10 && wait_tcp "$IP" "$C2S_PORT" 10; } \
    || { "$0" stop; die "prosody did not come up (see $D/prosody.log, $D/stdout.log)"; }
  echo "prosody ready on $IP (c2s $C2S_PORT, component $COMP_PORT) in $(since "$t0")s; logs in $D"
  ;;
adduser) prosodyctl --config "$CFG" register "$2" "$DOM" "$3" ;;
stop) stop_bg "$D/prosody.bg" ;;
pid) alive "$D/prosody.bg" || die "prosody is not running from $D"; cat "$D/prosody.bg" ;;
*) echo "usage: $0 start|stop|pid|adduser U P" >&2; exit 2 ;;
esac
