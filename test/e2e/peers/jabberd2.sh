#!/bin/bash
# jabberd2 2.7 (router + sm + c2s) in the foreground, sqlite storage; XEP-0114 on the router port.
# The router's address, port and component secret come from the operators' snippet
# etc/jabberd2/router.xml.snippet, spliced into <local> with only its placeholders replaced.
# usage: jabberd2.sh start|stop|pid     env: PEERS, JD2_IP (127.0.0.11)
#   pid: prints the pid of the process that holds the component port (jabberd2-router)
# Logs: $PEERS/jabberd2/log/{router,sm,c2s}.log; an earlier run's dir is kept as jabberd2.N.
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
D=$PEERS/jabberd2; IP=${JD2_IP:-127.0.0.11}; DOM=$XMPP_DOMAIN; SECRET=$COMP_SECRET
LIB=/usr/lib/x86_64-linux-gnu/jabberd2
SCHEMA=/usr/share/doc/jabberd2/db-setup.sqlite.gz
case "${1:-}" in
start)
  need jabberd2-router jabberd2-sm jabberd2-c2s sqlite3 zcat ss setsid
  [ -d "$LIB" ] || die "jabberd2 modules not found in $LIB (is the jabberd2 package installed?)"
  [ -f "$SCHEMA" ] || die "jabberd2 sqlite schema not found at $SCHEMA (is the jabberd2 package installed?)"
  alive "$D/run/router.bg" && die "jabberd2 already running from $D (run '$0 stop' first)"
  port_free "$IP" "$COMP_PORT"; port_free "$IP" "$C2S_PORT"
  fresh_dir "$D"; mkdir -p "$D"/{data,log,run}
  cat > "$D/router-users.xml" <<X
<users><user><name>jabberd</name><secret>routersecret</secret></user></users>
X
  # router.xml has no include: the snippet's text goes in byte for byte (cat, no command substitution)
  use_snippet "$SNIPPETS/jabberd2/router.xml.snippet" "$D/router-local.xml" HOST="$IP" PORT="$COMP_PORT" SECRET="$SECRET"
  { cat <<X
<router>
  <id>router</id>
  <pidfile>$D/run/router.pid</pidfile>
  <log type='stdout'/>
  <local>
    <users>$D/router-users.xml</users>
X
    cat "$D/router-local.xml"
    cat <<X
  </local>
  <check><interval>60</interval><keepalive>0</keepalive></check>
  <io><max_fds>1024</max_fds><limits><bytes>0</bytes><connects>0</connects></limits><access><order>allow,deny</order></access></io>
  <aliases/>
  <aci><acl type='all'><user>jabberd</user></acl></aci>
</router>
X
  } > "$D/router.xml"
  cat > "$D/c2s.xml" <<X
<c2s>
  <id>c2s</id>
  <pidfile>$D/run/c2s.pid</pidfile>
  <router><ip>$IP</ip><port>$COMP_PORT</port><user>jabberd</user><pass>routersecret</pass>
    <retry><init>10</init><lost>10</lost><sleep>1</sleep></retry></router>
  <log type='stdout'/>
  <local><id register-enable='mu'>$DOM</id><ip>$IP</ip><port>$C2S_PORT</port></local>
  <io><max_fds>1024</max_fds>
    <limits><bytes>0</bytes><stanzas>0</stanzas><connects>0</connects><stanzasize>65535</stanzasize></limits>
    <access><order>allow,deny</order></access>
    <check><interval>0</interval><idle>0</idle><keepalive>0</keepalive></check></io>
  <authreg>
    <path>$LIB</path><module>sqlite</module>
    <mechanisms><traditional><plain/><digest/></traditional><sasl><plain/><digest-md5/></sasl></mechanisms>
    <sqlite><dbname>$D/data/sqlite.db</dbname><busy-timeout>2000</busy-timeout><password_type><plaintext/></password_type></sqlite>
  </authreg>
</c2s>
X
  cat > "$D/sm.xml" <<X
<sm>
  <id>sm</id>
  <pidfile>$D/run/sm.pid</pidfile>
  <router><ip>$IP</ip><port>$COMP_PORT</port><user>jabberd</user><pass>routersecret</pass>
    <retry><init>10</init><lost>10</lost><sleep>1</sleep></retry></router>
  <log type='stdout'/>
  <local><id>$DOM</id></local>
  <storage><path>$LIB</path><driver>sqlite</driver>
    <sqlite><dbname>$D/data/sqlite.db</dbname><busy-timeout>2000</busy-timeout></sqlite></storage>
  <aci><acl type='all'><jid>admin@$DOM</jid></acl></aci>
  <modules>
    <path>$LIB</path>
    <chain id='sess-start'><module>status</module></chain>
    <chain id='sess-end'><module>status</module><module>iq-last</module></chain>
    <chain id='in-sess'><module>validate</module><module>status</module><module>privacy</module><module>roster</module>
      <module>iq-vcard</module><module>iq-ping</module><module>iq-private</module><module>disco</module>
      <module>offline</module><module>presence</module><module>deliver</module></chain>
    <chain id='out-sess'/>
    <chain id='in-router'><module>session</module><module>validate</module><module>presence</module><module>privacy</module></chain>
    <chain id='out-router'><module>privacy</module></chain>
    <chain id='pkt-sm'><module>iq-last</module><module>iq-ping</module><module>iq-time</module><module>iq-version</module>
      <module>disco</module><module>presence</module></chain>
    <chain id='pkt-user'><module>roster</module><module>presence</module><module>disco</module><module>iq-vcard</module>
      <module>deliver</module><module>offline</module><module>iq-last</module></chain>
    <chain id='pkt-router'><module>session</module><module>disco</module></chain>
    <chain id='user-load'><module>active</module><module>roster</module><module>privacy</module></chain>
    <chain id='user-unload'/>
    <chain id='user-create'><module>active</module></chain>
    <chain id='user-delete'><module>active</module><module>offline</module><module>privacy</module><module>roster</module>
      <module>status</module><module>iq-last</module><module>iq-private</module><module>iq-vcard</module></chain>
    <chain id='disco-extend'><module>iq-version</module></chain>
  </modules>
  <discovery><identity><category>server</category><type>im</type><name>jabberd2 test</name></identity></discovery>
  <user><auto-create/></user>
</sm>
X
  # schema from the package docs, users pre-created with plaintext passwords
  zcat "$SCHEMA" | sqlite3 "$D/data/sqlite.db" >/dev/null || die "cannot create $D/data/sqlite.db"
  sqlite3 "$D/data/sqlite.db" "INSERT INTO authreg(username,realm,password) VALUES('alice','$DOM','alicepw'),('bob','$DOM','bobpw'),('erin','$DOM','erinpw'),('frank','$DOM','frankpw');" \
    || die "cannot create users in $D/data/sqlite.db"
  t0=$(now_ms)
  start_bg "$D/run/router.bg" "$D/log/router.log" jabberd2-router -c "$D/router.xml"
  wait_tcp "$IP" "$COMP_PORT" 10 || { "$0" stop; die "jabberd2-router did not listen on $IP:$COMP_PORT (see $D/log/router.log)"; }
  start_bg "$D/run/sm.bg"  "$D/log/sm.log"  jabberd2-sm  -c "$D/sm.xml"
  start_bg "$D/run/c2s.bg" "$D/log/c2s.log" jabberd2-c2s -c "$D/c2s.xml"
  { wait_tcp "$IP" "$C2S_PORT" 10 && wait_log "$D/log/router.log" "\[$DOM\] online" 10; } \
    || { "$0" stop; die "jabberd2 did not come up (see $D/log/)"; }
  echo "jabberd2 ready on $IP (c2s $C2S_PORT, component $COMP_PORT) in $(since "$t0")s; logs in $D/log"
  ;;
stop) stop_bg "$D/run/c2s.bg" "$D/run/sm.bg" "$D/run/router.bg" ;;
pid) alive "$D/run/router.bg" || die "jabberd2 is not running from $D"; cat "$D/run/router.bg" ;;
*) echo "usage: $0 start|stop|pid" >&2; exit 2 ;;
esac
