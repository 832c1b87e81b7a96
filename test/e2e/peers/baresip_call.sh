#!/bin/bash
# baresip 1.0 as a headless SIP phone for the call scenarios (test/e2e/calls.py): it REGISTERs at
# Kamailio (its outbound proxy for every request), sends a sine tone (ausine) as PCMU/PCMA, needs no
# sound card (no audio player module is loaded: what it receives is decoded and counted, never played),
# and takes commands over ctrl_tcp (netstring JSON: dial, hangup, accept, callstat; call events such as
# CALL_RINGING, CALL_ESTABLISHED, CALL_CLOSED arrive on the same connection: test/e2e/call_peers.py).
# Media stays on loopback: net_interface 127.0.0.1 makes it its media address (SDP c=), RTP ports come
# from RTP_PORTS. It runs with its SIP trace on (-s: every message sent and received, SDP included, is in
# run.log) and under `script` (util-linux) as baresip.sh does: stdio.so prints only on a
# terminal, and everything it prints is copied to $D/run.log.
# usage: baresip_call.sh start NAME USER SIP_PORT CTRL_PORT ANSWERMODE [RTP_PORTS] | stop NAME
#   ANSWERMODE: manual (incoming calls wait for `accept`) or auto (answered at once)
#   RTP_PORTS: e.g. 10000-10019 (default); give two instances disjoint ranges
#   env: PEERS, SIP_DOMAIN (simple.test), BARESIP_PROXY (sip:127.0.0.2:5060), DNS_IP (127.0.0.53), DNS_PORT (53)
# Files: $PEERS/baresip/NAME/{config,accounts,contacts,run.log}; an earlier run's dir is kept as NAME.N.
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
ACT=${1:-}; NAME=${2:-}
USAGE="usage: $0 start NAME USER SIP_PORT CTRL_PORT manual|auto [RTP_PORTS] | stop NAME"
[ -n "$NAME" ] || { echo "$USAGE" >&2; exit 2; }
D=$PEERS/baresip/$NAME
case "$ACT" in
start)
  [ $# -ge 6 ] || { echo "$USAGE" >&2; exit 2; }
  U=$3; SP=$4; CP=$5; MODE=$6; RTP=${7:-10000-10019}
  case "$MODE" in manual|auto) ;; *) die "answer mode '$MODE' is neither manual nor auto" ;; esac
  DOM=${SIP_DOMAIN:-simple.test}; PROXY=${BARESIP_PROXY:-sip:127.0.0.2:5060}
  need baresip script ss setsid
  MODS=/usr/lib/baresip/modules
  for m in account menu ctrl_tcp stdio g711 ausine; do
    [ -f "$MODS/$m.so" ] || die "baresip module $MODS/$m.so not found (is baresip-core installed?)"
  done
  alive "$D/script.bg" && die "baresip $NAME already running from $D (run '$0 stop $NAME' first)"
  ss -Hlun "src 127.0.0.1:$SP" | grep -q . && die "udp 127.0.0.1:$SP is already in use"
  port_free 127.0.0.1 "$SP"; port_free 127.0.0.1 $((SP + 1)); port_free 127.0.0.1 "$CP"
  fresh_dir "$D"
  # ausine makes only 48 kHz stereo; baresip resamples it for the 8 kHz G.711 encoders.
  cat > "$D/config" <<X
poll_method		epoll
sip_listen		127.0.0.1:$SP
sip_trans_def		udp
dns_server		${DNS_IP:-127.0.0.53}:${DNS_PORT:-53}
net_interface		127.0.0.1
rtp_ports		$RTP
rtp_timeout		0
audio_path		/usr/share/baresip
audio_source		ausine,440
ausrc_srate		48000
ausrc_channels		2
module_path		$MODS
module			g711.so
module			ausine.so
module			stdio.so
module_app		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:$CP
X
  # regint: REGISTER; pubint 0: no PUBLISH; outbound: every request via Kamailio; audio_codecs: G.711 only
  echo "<sip:$U@$DOM>;outbound=\"$PROXY\";regint=600;pubint=0;answermode=$MODE;audio_codecs=PCMU,PCMA" > "$D/accounts"
  : > "$D/contacts"
  t0=$(now_ms)
  start_bg "$D/script.bg" "$D/script.out" script -qfec "baresip -s -f $D" "$D/run.log"
  { wait_alive "$D/script.bg" 10 tcp_listens 127.0.0.1 "$CP" && wait_log "$D/run.log" "registered successfully|200 OK" 10; } \
    || { "$0" stop "$NAME"; die "baresip $NAME did not register (see $D/run.log)"; }
  echo "baresip $U@$DOM on 127.0.0.1:$SP (ctrl $CP, rtp $RTP, answermode $MODE) registered in $(since "$t0")s; log $D/run.log"
  ;;
stop) stop_bg "$D/script.bg" ;;
*) echo "$USAGE" >&2; exit 2 ;;
esac
