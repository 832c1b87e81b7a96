#!/bin/bash
# dnsmasq 2.90 as the authoritative server for *.test (NAPTR/SRV/A) on 127.0.0.53:53; it never
# forwards anything (local=/test/ answers NXDOMAIN for unknown names under .test, REFUSED elsewhere).
# usage: dns.sh start|stop     env: PEERS, DNS_IP (127.0.0.53), DNS_PORT (53)
# Writes $PEERS/dns/resolv.conf for processes that only know the system resolver (kamailio.sh).
# Log (every query and answer): $PEERS/dns/dnsmasq.log; an earlier run's dir is kept as dns.N.
#
# Names (answers come back in arbitrary order; TTL 60 s):
#   simple.test    NAPTR D2U (order 10), D2T (order 20) -> _sip._udp/_sip._tcp -> pbx.simple.test:5060 = 127.0.0.2 (Kamailio)
#   sip.test       NAPTR D2U (order 10), D2T (order 20) -> _sip._udp/_sip._tcp -> gw.sip.test:5080 = 127.0.0.1 (xsgw)
#   failover.test  NAPTR D2U -> _sip._udp: priority 10 dead.failover.test:5060 = 127.0.0.3 (nothing listens),
#                                          priority 20 live.failover.test:5060 = 127.0.0.4 (a sipp UAS)
#   refuse.test    NAPTR D2U -> _sip._udp -> uas.refuse.test:5060 = 127.0.0.6 (a sipp UAS refusing SUBSCRIBEs)
#   presentity.test NAPTR D2U -> _sip._udp -> uas.presentity.test:5060 = 127.0.0.7 (a sipp presentity)
#   forgetful.test SRV only (_sip._udp -> uas.forgetful.test:5060 = 127.0.0.8: a sipp presentity that
#                  answers refreshes 481)
#   srvonly.test   SRV only (_sip._udp -> pbx.simple.test:5060);  aonly.test  A only (127.0.0.2)
#   tls.test       NAPTR SIPS+D2T -> _sips._tcp -> pbx.simple.test:5061 (Kamailio TLS, certificate of tls.test)
#   badname.test   NAPTR SIPS+D2T -> _sips._tcp -> pbx.simple.test:5061 (the same: does not name badname.test)
#   untrusted.test SRV only (_sips._tcp -> pbx.simple.test:5062: Kamailio TLS, self-signed certificate)
#   nowhere.test   nothing: NXDOMAIN
#   fault.test     SRV only (_sip._udp -> target.fault.test:5060 = 127.0.0.9: the fault test's sipp UAS)
#   *.dnsfault.test A only, any name (127.0.0.9): the fault test's uncached lookups (its DNS proxy fails them)
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
D=$PEERS/dns; IP=${DNS_IP:-127.0.0.53}; PORT=${DNS_PORT:-53}
case "${1:-}" in
start)
  need dnsmasq ss setsid
  alive "$D/dnsmasq.bg" && die "dnsmasq already running from $D (run '$0 stop' first)"
  ss -Hlun "src $IP:$PORT" | grep -q . && die "udp $IP:$PORT is already in use (a dnsmasq left running? try '$0 stop' with the same PEERS=$PEERS)"
  fresh_dir "$D"
  cat > "$D/dnsmasq.conf" <<X
keep-in-foreground
no-resolv
no-hosts
no-poll
listen-address=$IP
bind-interfaces
port=$PORT
local=/test/
cache-size=0
local-ttl=60
log-queries=extra
log-facility=-
naptr-record=simple.test,10,10,"S","SIP+D2U","",_sip._udp.simple.test
naptr-record=simple.test,20,10,"S","SIP+D2T","",_sip._tcp.simple.test
srv-host=_sip._udp.simple.test,pbx.simple.test,5060,0,10
srv-host=_sip._tcp.simple.test,pbx.simple.test,5060,0,10
host-record=pbx.simple.test,127.0.0.2
naptr-record=sip.test,10,10,"S","SIP+D2U","",_sip._udp.sip.test
naptr-record=sip.test,20,10,"S","SIP+D2T","",_sip._tcp.sip.test
srv-host=_sip._udp.sip.test,gw.sip.test,5080,0,10
srv-host=_sip._tcp.sip.test,gw.sip.test,5080,0,10
host-record=gw.sip.test,127.0.0.1
naptr-record=failover.test,10,10,"S","SIP+D2U","",_sip._udp.failover.test
srv-host=_sip._udp.failover.test,dead.failover.test,5060,10,10
srv-host=_sip._udp.failover.test,live.failover.test,5060,20,10
host-record=dead.failover.test,127.0.0.3
host-record=live.failover.test,127.0.0.4
srv-host=_sip._udp.srvonly.test,pbx.simple.test,5060,0,10
naptr-record=refuse.test,10,10,"S","SIP+D2U","",_sip._udp.refuse.test
srv-host=_sip._udp.refuse.test,uas.refuse.test,5060,0,10
host-record=uas.refuse.test,127.0.0.6
naptr-record=presentity.test,10,10,"S","SIP+D2U","",_sip._udp.presentity.test
srv-host=_sip._udp.presentity.test,uas.presentity.test,5060,0,10
host-record=uas.presentity.test,127.0.0.7
srv-host=_sip._udp.forgetful.test,uas.forgetful.test,5060,0,10
host-record=uas.forgetful.test,127.0.0.8
host-record=aonly.test,127.0.0.2
naptr-record=tls.test,10,10,"S","SIPS+D2T","",_sips._tcp.tls.test
srv-host=_sips._tcp.tls.test,pbx.simple.test,5061,0,10
naptr-record=badname.test,10,10,"S","SIPS+D2T","",_sips._tcp.badname.test
srv-host=_sips._tcp.badname.test,pbx.simple.test,5061,0,10
srv-host=_sips._tcp.untrusted.test,pbx.simple.test,5062,0,10
srv-host=_sip._udp.fault.test,target.fault.test,5060,0,10
host-record=target.fault.test,127.0.0.9
address=/dnsfault.test/127.0.0.9
X
  # port 53 only: glibc's resolv.conf has no port option
  printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$IP" > "$D/resolv.conf"
  t0=$(now_ms)
  start_bg "$D/dnsmasq.bg" "$D/dnsmasq.log" dnsmasq --conf-file="$D/dnsmasq.conf"
  wait_alive "$D/dnsmasq.bg" 5 udp_bound "$IP" "$PORT" \
    || { "$0" stop; die "dnsmasq did not come up (see $D/dnsmasq.log)"; }
  echo "dnsmasq ready on $IP:$PORT in $(since "$t0")s; log $D/dnsmasq.log"
  ;;
stop) stop_bg "$D/dnsmasq.bg" ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
