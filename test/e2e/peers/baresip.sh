#!/bin/bash
# baresip 1.0 as a headless SIMPLE user agent: REGISTERs and PUBLISHes its presence through Kamailio,
# SUBSCRIBEs (presence=p2p) to the contacts it is given, and takes commands over ctrl_tcp (netstring
# JSON; test/e2e/sip.py Baresip.command, e.g. presence_online / presence_offline).
# stdio.so prints some lines only on a terminal, so baresip runs under `script` (util-linux), which gives
# it a pty and copies everything it prints to $D/run.log; the scenarios read that log, e.g.
# "presence: update status of '<sip:...>' from 'X' to 'Y'" when a watched contact changes.
# usage: baresip.sh start NAME USER SIP_PORT CTRL_PORT [WATCHED_AOR...] | stop NAME
#   it listens on 127.0.0.1:SIP_PORT (udp, tcp) and SIP_PORT+1 (tls): give two instances ports 2 apart
#   env: PEERS, SIP_DOMAIN (simple.test), BARESIP_PROXY (sip:127.0.0.2:5060), DNS_IP (127.0.0.53),
#        DNS_PORT (53), BARESIP_PUBINT (60: PUBLISH refresh interval, s; 0: no PUBLISH)
# Files: $PEERS/baresip/NAME/{config,accounts,contacts,run.log}; an earlier run's dir is kept as NAME.N.
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
ACT=${1:-}; NAME=${2:-}
[ -n "$NAME" ] || { echo "usage: $0 start NAME USER SIP_PORT CTRL_PORT [WATCHED_AOR...] | stop NAME" >&2; exit 2; }
D=$PEERS/baresip/$NAME
case "$ACT" in
start)
  [ $# -ge 5 ] || { echo "usage: $0 start NAME USER SIP_PORT CTRL_PORT [WATCHED_AOR...]" >&2; exit 2; }
  U=$3; SP=$4; CP=$5; shift 5
  DOM=${SIP_DOMAIN:-simple.test}; PROXY=${BARESIP_PROXY:-sip:127.0.0.2:5060}
  need baresip script ss setsid
  MODS=/usr/lib/baresip/modules
  for m in account contact menu presence ctrl_tcp stdio g711 ausine; do
    [ -f "$MODS/$m.so" ] || die "baresip module $MODS/$m.so not found (is baresip-core installed?)"
  done
  alive "$D/script.bg" && die "baresip $NAME already running from $D (run '$0 stop $NAME' first)"
  # baresip binds SIP_PORT over udp and tcp, and SIP_PORT+1 for tls
  ss -Hlun "src 127.0.0.1:$SP" | grep -q . && die "udp 127.0.0.1:$SP is already in use"
  port_free 127.0.0.1 "$SP"; port_free 127.0.0.1 $((SP + 1)); port_free 127.0.0.1 "$CP"
  fresh_dir "$D"
  cat > "$D/config" <<X
poll_method		epoll
sip_listen		127.0.0.1:$SP
sip_trans_def		udp
dns_server		${DNS_IP:-127.0.0.53}:${DNS_PORT:-53}
audio_path		/usr/share/baresip
module_path		$MODS
module			g711.so
module			ausine.so
module			stdio.so
module_app		account.so
module_app		contact.so
module_app		menu.so
module_app		presence.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:$CP
X
  # regint: REGISTER; pubint: PUBLISH own presence (refresh period); outbound: every request via Kamailio
  echo "<sip:$U@$DOM>;outbound=\"$PROXY\";regint=600;pubint=${BARESIP_PUBINT:-60};answermode=manual" > "$D/accounts"
  : > "$D/contacts"
  for c in "$@"; do echo "<sip:$c>;presence=p2p" >> "$D/contacts"; done
  t0=$(now_ms)
  # group = script + baresip (script is the group leader: start_bg's setsid)
  start_bg "$D/script.bg" "$D/script.out" script -qfec "baresip -f $D" "$D/run.log"
  { wait_alive "$D/script.bg" 10 tcp_listens 127.0.0.1 "$CP" && wait_log "$D/run.log" "registered successfully|200 OK" 10; } \
    || { "$0" stop "$NAME"; die "baresip $NAME did not register (see $D/run.log)"; }
  echo "baresip $U@$DOM on 127.0.0.1:$SP (ctrl $CP) registered in $(since "$t0")s; log $D/run.log"
  ;;
stop) stop_bg "$D/script.bg" ;;
*) echo "usage: $0 start NAME USER SIP_PORT CTRL_PORT [WATCHED_AOR...] | stop NAME" >&2; exit 2 ;;
esac
