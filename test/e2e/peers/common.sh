# Shared helpers for the XMPP server recipes (source me; bash only).
# Every server: XMPP domain xmpp.test, component sip.test (secret sipsecret) on port 5347,
# c2s on 5222, users alice, bob, erin and frank (password: the name and "pw", e.g. alicepw).
# State and logs live under $PEERS/<server>.
set -u
PEERS=${PEERS:-${TMPDIR:-/tmp}/xsgw-peers}
XMPP_DOMAIN=${XMPP_DOMAIN:-xmpp.test}
COMP_DOMAIN=${COMP_DOMAIN:-sip.test}
COMP_SECRET=${COMP_SECRET:-sipsecret}
# shellcheck disable=SC2034  # used by the scripts that source this one
C2S_PORT=5222 COMP_PORT=5347

# The operators' server snippets (etc/ at the top of the tree): the recipes register the component
# with these very files, so a wrong snippet fails the e2e suite.
# shellcheck disable=SC2034  # used by the scripts that source this one
SNIPPETS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../etc" && pwd)

# die MESSAGE...: one clear line on stderr, non-zero exit. A missing peer is a failure, never a skip.
die() { echo "$(basename "$0"): ERROR: $*" >&2; exit 1; }

# use_snippet SRC DST KEY=VALUE...: write SRC to DST with every placeholder @KEY@ replaced by VALUE
# and every other byte SRC's own: DST is built from SRC's text between placeholders and the values,
# nothing else. Fails loudly when SRC has a placeholder no KEY fills, when a KEY's placeholder is not
# in SRC, or when a VALUE spans lines. VALUE goes in as is: the caller keeps it free of the target
# format's quotes. A placeholder is @ then capitals, digits or _ then @; the snippets' headers name them
# without the @s, so a snippet that hard-codes a value in place of its placeholder fails here.
use_snippet() {
  local src=$1 dst=$2 kv key text rest token out='' re='@([A-Z][A-Z0-9_]*)@'
  local -A value=() used=()
  local LC_ALL=C                     # bytes, and [A-Z] means the 26 capitals whatever the locale
  shift 2
  [[ -f $src && -r $src ]] || die "snippet $src not found"
  for kv in "$@"; do
    key=${kv%%=*}
    [[ $kv == *=* && $key =~ ^[A-Z][A-Z0-9_]*$ ]] || die "use_snippet: '$kv' is not KEY=VALUE"
    [[ ${kv#*=} == *$'\n'* ]] && die "use_snippet: the value for @$key@ spans lines"
    value[$key]=${kv#*=}
  done
  IFS= read -r -d '' text < "$src"   # the whole file, trailing newlines included (read returns 1 at EOF)
  rest=$text
  while [[ $rest =~ $re ]]; do       # leftmost placeholder
    token=${BASH_REMATCH[0]}; key=${BASH_REMATCH[1]}
    [ -n "${value[$key]+set}" ] || die "$src has the placeholder $token, which $(basename "$0") does not fill"
    out+=${rest%%"$token"*}${value[$key]}
    rest=${rest#*"$token"}
    used[$key]=1
  done
  out+=$rest
  for key in "${!value[@]}"; do
    [ -n "${used[$key]+set}" ] || die "$src lacks the placeholder @$key@ (was it edited in place of a copy?)"
  done
  printf '%s' "$out" > "$dst" || die "cannot write $dst"
}
# need PROGRAM...: fail loudly unless every program is installed
need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "required program '$c' is not installed (see test/e2e/README.md for the Debian packages)"
  done
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# since T0_MS: seconds since T0_MS with millisecond precision
since() { local ms=$(( $(now_ms) - $1 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }
# port_free IP PORT: fail loudly when something already listens there (e.g. a copy left running)
port_free() {
  ss -Hltn "src $1:$2" | grep -q . && die "$1:$2 is already in use (a server left running? try '$0 stop' with the same PEERS=$PEERS)"
  return 0
}
# fresh_dir DIR: make DIR empty; an earlier run's DIR is kept as DIR.N so its logs survive restarts
fresh_dir() {
  local d=$1 n=1
  if [ -e "$d" ]; then
    while [ -e "$d.$n" ]; do n=$((n + 1)); done
    mv "$d" "$d.$n"
  fi
  mkdir -p "$d"
}
# wait_tcp HOST PORT [TIMEOUT_S]: poll until HOST:PORT accepts a connection
wait_tcp() {
  local h=$1 p=$2 t=${3:-20} end
  end=$(( $(now_ms) + t * 1000 ))
  while [ "$(now_ms)" -lt $end ]; do
    (exec 3<>"/dev/tcp/$h/$p") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timeout after ${t}s waiting for $h:$p" >&2; return 1
}
# wait_udp HOST PORT [TIMEOUT_S]: poll until a UDP socket is bound to HOST:PORT
wait_udp() {
  local h=$1 p=$2 t=${3:-20} end
  end=$(( $(now_ms) + t * 1000 ))
  while [ "$(now_ms)" -lt $end ]; do
    ss -Hlun "src $h:$p" | grep -q . && return 0
    sleep 0.05
  done
  echo "timeout after ${t}s waiting for udp $h:$p" >&2; return 1
}
# wait_log FILE REGEX [TIMEOUT_S]: poll until FILE has a line matching REGEX
wait_log() {
  local f=$1 r=$2 t=${3:-20} end
  end=$(( $(now_ms) + t * 1000 ))
  while [ "$(now_ms)" -lt $end ]; do
    grep -qE "$r" "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timeout after ${t}s waiting for /$r/ in $f" >&2; return 1
}
# wait_alive PIDFILE TIMEOUT_S CHECK...: poll until CHECK succeeds; fail at once when the process
# group in PIDFILE has died (a peer that exits on a config error is reported now, not at the deadline)
wait_alive() {
  local pf=$1 t=$2 end; shift 2
  end=$(( $(now_ms) + t * 1000 ))
  while [ "$(now_ms)" -lt $end ]; do
    "$@" 2>/dev/null && return 0
    alive "$pf" || { echo "process group in $pf exited" >&2; return 1; }
    sleep 0.05
  done
  echo "timeout after ${t}s waiting for: $*" >&2; return 1
}
# udp_bound HOST PORT / tcp_listens HOST PORT: one check, for wait_alive
udp_bound() { ss -Hlun "src $1:$2" | grep -q .; }
tcp_listens() { ss -Hltn "src $1:$2" | grep -q .; }
# start_bg PIDFILE LOGFILE CMD...: run CMD in its own session; setsid does not fork here (the
# background job is not a group leader), so $! is CMD's pid == its process group id.
start_bg() { local pf=$1 log=$2; shift 2; setsid "$@" > "$log" 2>&1 < /dev/null & echo $! > "$pf"; }
# group_live PGID: a process of group PGID is still running. Zombies do not count: an orphaned peer is
# reaped by pid 1, which may take seconds to do it, and `kill -0` succeeds on a zombie.
group_live() { ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'; }
# alive PIDFILE: the process group recorded in PIDFILE still exists
alive() { [ -f "$1" ] && group_live "$(cat "$1")"; }
# stop_bg PIDFILE...: SIGTERM each group, wait up to STOP_WAIT (3) s, then SIGKILL what is left
stop_bg() {
  local f g alive_any end pgs=()
  for f in "$@"; do
    [ -f "$f" ] || continue
    g=$(cat "$f"); pgs+=("$g"); kill -TERM -- "-$g" 2>/dev/null; kill -CONT -- "-$g" 2>/dev/null; rm -f "$f"
  done
  [ ${#pgs[@]} = 0 ] && return 0
  end=$(( $(now_ms) + ${STOP_WAIT:-3} * 1000 ))
  while [ "$(now_ms)" -lt $end ]; do
    alive_any=0; for g in "${pgs[@]}"; do group_live "$g" && alive_any=1; done
    [ $alive_any = 0 ] && return 0
    sleep 0.05
  done
  for g in "${pgs[@]}"; do kill -KILL -- "-$g" 2>/dev/null; done
  return 0
}
