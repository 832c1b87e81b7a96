#!/bin/bash
# Kamailio 5.6: registrar (+ SIMPLE presence server) for simple.test on 127.0.0.2:5060 udp+tcp; no auth, no DB server.
# Requests for other domains (sip.test = the gateway) are relayed after an RFC 3263 lookup (NAPTR, SRV, A).
# Kamailio resolves only through /etc/resolv.conf (port 53), so it runs in a private mount namespace whose
# /etc/resolv.conf is bind-mounted from $PEERS/dns/resolv.conf (dns.sh start writes it): every lookup goes to
# the test dnsmasq and never leaves loopback. KAM_STATIC_GW=1 instead routes sip.test to 127.0.0.1:5080
# without DNS (a fallback for machines where unshare/mount is not allowed).
# Presence: PUBLISH and SUBSCRIBE for simple.test are served here (presence server, every watcher
# allowed); so is a PUBLISH for the gateway's domain GW_DOMAIN (sip.test: xsgw's [presence] publish_to,
# P13), and a SUBSCRIBE for GW_DOMAIN that comes from WATCH_HERE_IP (127.0.0.5: one test watcher bound
# there); every other request for GW_DOMAIN is relayed to the gateway.
# S4, TLS: it also listens for TLS on 5061 (certificate of tls.test) and 5062 (a self-signed one of
# untrusted.test), from the test certificates in $PEERS/tls (test/tls/make-certs.sh), and answers every
# request for tls.test, badname.test and untrusted.test itself (200, log line TLSDOMAIN with the transport).
# A MESSAGE for GW_DOMAIN from tlsuser@ goes to the gateway over TLS (127.0.0.1:5061), its certificate
# checked against the test CA; as a TLS client Kamailio presents tls.test's certificate (issue 5 part 7).
# usage: kamailio.sh start|stop|ul     env: PEERS, KAM_IP (127.0.0.2), SIP_DOMAIN (simple.test), KAM_STATIC_GW,
#   GW_DOMAIN (sip.test), WATCH_HERE_IP (127.0.0.5)
#   ul: prints the location table (who is registered)
# Log: $PEERS/kamailio/kamailio.log, one line per request received (REQ, with source and transport),
#   request sent (SEND, with destination and transport), reply received (REPLY) and failure (FAIL);
#   for SUBSCRIBE, PUBLISH and NOTIFY also HDR (Event, Accept, Expires, SIP-If-Match, Subscription-State,
#   Content-Type; [<null>] when absent), and LOCAL for each NOTIFY the presence server sends itself, with
#   its body (which goes on over the following lines).
# An earlier run's dir is kept as kamailio.N.
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
D=$PEERS/kamailio; IP=${KAM_IP:-127.0.0.2}; DOM=${SIP_DOMAIN:-simple.test}
GW_DOM=${GW_DOMAIN:-sip.test}; WATCH_HERE=${WATCH_HERE_IP:-127.0.0.5}
CTL=unix:$D/run/kamailio_ctl
case "${1:-}" in
start)
  need kamailio kamcmd ss setsid unshare mount
  [ -d /usr/lib/x86_64-linux-gnu/kamailio/modules ] || die "kamailio modules not found (is the kamailio package installed?)"
  [ -f /usr/lib/x86_64-linux-gnu/kamailio/modules/presence.so ] || die "presence.so not found (is kamailio-presence-modules installed?)"
  [ -f /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || die "tls.so not found (is kamailio-tls-modules installed?)"
  TLS=$PEERS/tls
  for f in ca.pem tls.test.pem tls.test.key untrusted.test.pem untrusted.test.key; do
    [ -f "$TLS/$f" ] || die "$TLS/$f missing: run test/tls/make-certs.sh $TLS first"
  done
  alive "$D/kamailio.bg" && die "kamailio already running from $D (run '$0 stop' first)"
  port_free "$IP" 5060; port_free "$IP" 5061; port_free "$IP" 5062
  ss -Hlun "src $IP:5060" | grep -q . && die "udp $IP:5060 is already in use"
  RESOLV=$PEERS/dns/resolv.conf
  if [ "${KAM_STATIC_GW:-0}" != 1 ]; then
    [ -f "$RESOLV" ] || die "$RESOLV missing: start dns.sh first (same PEERS), or set KAM_STATIC_GW=1"
  fi
  fresh_dir "$D"; mkdir -p "$D/run"
  cat > "$D/tls.cfg" <<X
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = $TLS/tls.test.pem
private_key = $TLS/tls.test.key

[server:$IP:5062]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = $TLS/untrusted.test.pem
private_key = $TLS/untrusted.test.key

[client:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
ca_list = $TLS/ca.pem
certificate = $TLS/tls.test.pem
private_key = $TLS/tls.test.key
X
  cp -r /usr/share/kamailio/dbtext/kamailio "$D/dbtext"      # presence needs a db_url; nothing is stored there
  cat > "$D/kamailio.cfg" <<X
#!KAMAILIO
#!define DBURL "text://$D/dbtext"
debug=2
log_stderror=yes
fork=yes
children=2
tcp_children=2
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=on
dns_try_naptr=yes
dns_srv_lb=no
listen=udp:$IP:5060
listen=tcp:$IP:5060
enable_tls=yes
listen=tls:$IP:5061
listen=tls:$IP:5062
alias="$DOM"
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"

loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "db_text.so"
loadmodule "presence.so"
loadmodule "presence_xml.so"
loadmodule "ctl.so"
loadmodule "tls.so"

modparam("ctl", "binrpc", "$CTL")
modparam("tls", "config", "$D/tls.cfg")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("presence", "db_url", DBURL)
modparam("presence", "subs_db_mode", 0)      # subscriptions in memory only
modparam("presence", "publ_cache", 2)        # published state in memory only
modparam("presence", "server_address", "sip:$IP:5060")
modparam("presence_xml", "db_url", DBURL)
modparam("presence_xml", "force_active", 1)  # no xcap authorization rules: every watcher is allowed

request_route {
    xlog("L_INFO", "REQ \$rm \$ru from \$fu (src \$si:\$sp/\$proto) ci=\$ci len=\$ml\n");
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!sanity_check("17895", "7")) { xlog("L_INFO", "INSANE \$rm \$ru ci=\$ci\n"); exit; }
    if (is_method("SUBSCRIBE|PUBLISH|NOTIFY"))
        xlog("L_INFO", "HDR \$rm \$ru (src \$si:\$sp) ci=\$ci event=[\$hdr(Event)] accept=[\$hdr(Accept)] expires=[\$hdr(Expires)] if-match=[\$hdr(SIP-If-Match)] state=[\$hdr(Subscription-State)] ctype=[\$hdr(Content-Type)]\n");
    if (has_totag()) {
        if (loose_route()) { route(RELAY); exit; }
        if (is_method("SUBSCRIBE") && uri == myself) { route(PRESENCE); exit; }
        if (is_method("ACK")) { if (t_check_trans()) t_relay(); exit; }
        if (uri == myself) { sl_send_reply("404", "Not here"); exit; }
        route(RELAY); exit;
    }
    if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
    t_check_trans();
    # S4: the TLS test domains end here; the log line says over which transport they came.
    if (\$rd == "tls.test" || \$rd == "badname.test" || \$rd == "untrusted.test") {
        xlog("L_INFO", "TLSDOMAIN \$rm \$ru from \$fu proto=\$proto (dst \$Ri:\$Rp) ci=\$ci\n");
        sl_send_reply("200", "OK");
        exit;
    }
    if (is_method("REGISTER")) {
        if (!save("location")) sl_reply_error();
        xlog("L_INFO", "REGISTERED \$tu contact \$ct\n");
        exit;
    }
    if (is_method("PUBLISH|SUBSCRIBE") && uri == myself) { route(PRESENCE); exit; }
    # P13: the gateway PUBLISHes its XMPP users (sip:USER*DOMAIN@sip.test) here; they are kept by this
    # presence server. A SUBSCRIBE for sip.test from WATCH_HERE_IP (one test watcher, bound there) is
    # served here from those publications; every other SUBSCRIBE for sip.test goes on to the gateway.
    if (is_method("PUBLISH") && \$rd == "$GW_DOM") { route(PRESENCE); exit; }
    if (is_method("SUBSCRIBE") && \$rd == "$GW_DOM" && \$si == "$WATCH_HERE") { route(PRESENCE); exit; }
    if (is_method("INVITE|SUBSCRIBE")) record_route();
    if (uri == myself) {
        if (!lookup("location")) { xlog("L_INFO", "NOUSER \$ru ci=\$ci\n"); sl_send_reply("404", "Not Found"); exit; }
    }
    # S4: tlsuser's MESSAGEs to the gateway go over TLS, the gateway's certificate checked
    else if (is_method("MESSAGE") && \$rd == "$GW_DOM" && \$fU == "tlsuser") { \$du = "sip:127.0.0.1:5061;transport=tls"; }
#!ifdef WITH_GW_STATIC
    else if (\$rd == "sip.test") { \$du = "sip:127.0.0.1:5080"; }
#!endif
    route(RELAY);
}
route[RELAY] {
    t_on_reply("REPLY");
    t_on_failure("FAIL");
    if (!t_relay()) { xlog("L_INFO", "RELAYFAIL \$rm \$ru ci=\$ci\n"); sl_reply_error(); }
    exit;
}
onreply_route[REPLY] { xlog("L_INFO", "REPLY \$rs \$rr for \$rm ci=\$ci (src \$si:\$sp/\$proto)\n"); }
failure_route[FAIL] { xlog("L_INFO", "FAIL \$T_reply_code for \$rm \$ru ci=\$ci\n"); }
# requests the presence server makes itself (NOTIFYs to its watchers)
event_route[tm:local-request] { xlog("L_INFO", "LOCAL \$rm \$ru ci=\$ci state=[\$hdr(Subscription-State)] len=\$ml body=[\$rb]\n"); }
onsend_route { xlog("L_INFO", "SEND \$rm \$ru to \$sndto(ip):\$sndto(port)/\$sndto(sproto) ci=\$ci len=\$ml\n"); }
route[PRESENCE] {
    if (!t_newtran()) { sl_reply_error(); exit; }
    if (is_method("PUBLISH")) { handle_publish(); } else { handle_subscribe(); }
    t_release();
    exit;
}
X
  EXTRA=(); [ "${KAM_STATIC_GW:-0}" = 1 ] && EXTRA=(-A WITH_GW_STATIC)
  kamailio -c "${EXTRA[@]}" -f "$D/kamailio.cfg" > "$D/check.log" 2>&1 || die "kamailio.cfg does not parse (see $D/check.log)"
  KAM=(kamailio -DD -E "${EXTRA[@]}" -f "$D/kamailio.cfg" -Y "$D/run" -P "$D/run/kamailio.pid" -m 64 -M 8)
  t0=$(now_ms)
  if [ "${KAM_STATIC_GW:-0}" = 1 ]; then
    start_bg "$D/kamailio.bg" "$D/kamailio.log" "${KAM[@]}"
  else
    # the private namespace sees the test resolver; the rest of the machine keeps its own
    start_bg "$D/kamailio.bg" "$D/kamailio.log" unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$RESOLV" "${KAM[@]}"
  fi
  { wait_alive "$D/kamailio.bg" 10 udp_bound "$IP" 5060 && wait_alive "$D/kamailio.bg" 10 tcp_listens "$IP" 5060 \
    && wait_alive "$D/kamailio.bg" 10 tcp_listens "$IP" 5061 && wait_alive "$D/kamailio.bg" 10 tcp_listens "$IP" 5062; } \
    || { "$0" stop; die "kamailio did not come up (see $D/kamailio.log)"; }
  echo "kamailio ready on $IP:5060 udp+tcp, 5061+5062 tls in $(since "$t0")s ($([ "${KAM_STATIC_GW:-0}" = 1 ] && echo 'static route to the gateway' || echo "DNS via $RESOLV")); log $D/kamailio.log"
  ;;
stop) stop_bg "$D/kamailio.bg" ;;
ul) kamcmd -s "$CTL" ul.dump ;;
*) echo "usage: $0 start|stop|ul" >&2; exit 2 ;;
esac
