#!/usr/bin/python3
"""End-to-end scenarios: the real xsgw binary against a real XMPP server and real SIP peers
(STANDARDS.md sections X, M, P, E, D, A, S).

usage: /usr/bin/python3 test/e2e/run.py --xsgw PATH --server jabberd2|prosody|ejabberd \
           --workdir DIR [--scenario NAME ...] [--group xmpp|messaging|presence ...] [--list]

Starts the server with test/e2e/peers/<server>.sh (PEERS=DIR/peers) and, when a selected scenario
needs the SIP side, dnsmasq, Kamailio and the sipp user agents (test/e2e/sip.py); writes the xsgw
configs into DIR (mode 0600), runs xsgw as a subprocess (its output kept in DIR/xsgw-<name>.log), runs
the scenarios in order and prints one line per scenario, `PASS name` or `FAIL name: why`.
Everything is stopped at the end, also on failure or interruption; on failure the paths of
every peer, xsgw and client log are printed. Exit status 0 only if every scenario passed.

Nothing here sleeps to synchronise: every wait is for an event (a log line, a stanza, a process
exit) with a deadline. The only fixed window is the one in x3_conflict that counts connection
attempts over 3 s, which is a measurement, not a synchronisation.
"""
import argparse
import asyncio
import glob
import logging
import os
import re
import shutil
import shlex
import signal
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

logging.getLogger().addHandler(logging.NullHandler())  # keep slixmpp's import-time warnings off stderr
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xmpp_client import Client, ClientError, error_condition, local, log_to, ns, to_text  # noqa: E402
from sip import KAMAILIO, SIPP_DIR, SipError, SipPeers, make_certs, run_script, tls_dir  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_IPS = {'jabberd2': '127.0.0.11', 'prosody': '127.0.0.12', 'ejabberd': '127.0.0.13'}
XMPP_DOMAIN = 'xmpp.test'
COMPONENT = 'sip.test'
SIP_DOMAIN = 'sip.test'       # [sip] domain: XMPP users appear as sip:alice*xmpp.test@sip.test
SECRET = 'sipsecret'
WRONG_SECRET = 'wrongsecret42'
COMP_PORT = 5347
USER_JID = 'alice*sip.example.org@' + COMPONENT   # a SIP user as the gateway shows it to XMPP

NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_VERSION = 'jabber:iq:version'
NS_PING = 'urn:xmpp:ping'
NS_GATEWAY = 'jabber:iq:gateway'
REQUIRED_FEATURES = {NS_DISCO_INFO, NS_VERSION, NS_PING, NS_GATEWAY}

# The first instance serves every client scenario; keepalive 1 s / 1 s for x3_dead_link.
MAIN = dict(reconnect_min=200, reconnect_max=2000, keepalive_interval=1, keepalive_timeout=1)
METRICS_PORT = 9477  # the main instance's [metrics] listen on 127.0.0.1
GATEWAY_TLS_PORT = 5061  # S4: the main instance's [sip] tls_listen on 127.0.0.1
# Instances that are meant to be refused: short backoff so that a few seconds show several retries.
REFUSED = dict(reconnect_min=200, reconnect_max=1000, keepalive_interval=30, keepalive_timeout=10)

SCENARIO_DEADLINE = 60.0

# The main instance's [presence] section: SUBSCRIBEs for XMPP watchers with Expires 600 (not the default
# 3600: P1 says configurable); SIP watchers may ask for as little as 2 s (p9_watcher_expiry asks for 4);
# 5 subscriptions per XMPP user (p14_limits fills frank's; no other scenario takes alice above 4); every
# XMPP user's presence PUBLISHed to Kamailio for 4 s at a time, so that a refresh comes within seconds
# (p13_publish).
# Requirements xsgw is known not to meet, each printed as `# KNOWN SHORTFALL` by the run that meets it
# instead of failing (Harness.shortfall). Remove an entry to make its check fail again.
KNOWN_SHORTFALLS = {
}
MAX_PER_USER = 5
PUBLISH_EXPIRES = 4
MAIN_PRESENCE = ['subscribe_expires = 600', 'min_expires = 2', 'max_expires = 3600',
                 'max_per_user = %d' % MAX_PER_USER, 'publish_to = "sip:127.0.0.2:5060"',
                 'publish_expires = %d' % PUBLISH_EXPIRES]


class Fail(Exception):
    """A scenario's expectation did not hold; the message says what was expected and seen."""


def check(cond, why):
    if not cond:
        raise Fail(why)


class RunLog:
    """DIR/run.log: every step of every scenario with a time stamp, for reading after a failure."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, 'a', buffering=1)
        self.t0 = time.monotonic()

    def __call__(self, text):
        self.f.write('%8.3f %s\n' % (time.monotonic() - self.t0, text))


# ---------------------------------------------------------------------------------------------
# peers

class Server:
    """The XMPP server, driven through its recipe test/e2e/peers/<name>.sh."""

    def __init__(self, name, peers_dir, log):
        self.name, self.ip, self.peers_dir, self.log = name, SERVER_IPS[name], peers_dir, log
        self.start_times = []

    async def _run(self, action, within):
        # The same bounded recipe runner as the SIP peers', with this harness's failure type.
        try:
            return await run_script(self.name + '.sh', action, self.peers_dir, self.log, within)
        except SipError as e:
            raise Fail(str(e)) from None

    async def start(self):
        t0 = time.monotonic()
        out = await self._run('start', within=90)
        self.start_times.append(time.monotonic() - t0)
        return out

    async def stop(self):
        return await self._run('stop', within=30)

    async def pid(self):
        """Pid of the process that holds the component port."""
        return int(await self._run('pid', within=10))


class Xsgw:
    """One xsgw process; every output line is written to its log and kept with its arrival time
    (monotonic), so that scenarios can wait for lines and measure the gaps between them."""

    def __init__(self, binary, workdir, name, server_ip, sip_port, secret, log, sip_extra=(), presence=(),
                 xmpp_extra=(), dns_server='127.0.0.53:53', **link):
        self.binary, self.name, self.log = binary, name, log
        self.link = link
        self.config_path = os.path.join(workdir, 'xsgw-%s.toml' % name)
        self.log_path = os.path.join(workdir, 'xsgw-%s.log' % name)
        self.lines = []           # (monotonic time, text)
        self.proc = None
        self.rc = None            # exit status once the process has ended and its output is read
        self._changed = asyncio.Condition()
        self._reader = None
        self._write_config(server_ip, sip_port, secret, link, sip_extra, presence, xmpp_extra, dns_server)

    def _write_config(self, server_ip, sip_port, secret, link, sip_extra, presence, xmpp_extra, dns_server):
        text = '\n'.join([
            '# written by test/e2e/run.py',
            '[xmpp]',
            'component = "%s"' % COMPONENT,
            'host = "%s"' % server_ip,
            'port = %d' % COMP_PORT,
            'secret = "%s"' % secret,
            'keepalive_interval = %d   # seconds' % link['keepalive_interval'],
            'keepalive_timeout = %d    # seconds' % link['keepalive_timeout'],
            'reconnect_min = %d       # ms' % link['reconnect_min'],
            'reconnect_max = %d      # ms' % link['reconnect_max'],
            *(['admins = ["alice@%s"]  # may run the stats ad-hoc command' % XMPP_DOMAIN]
              if link.get('metrics_port') else []),
            *xmpp_extra,
            '[sip]',
            'domain = "%s"' % SIP_DOMAIN,
            'listen = "sip:127.0.0.1:%d"' % sip_port,
            *sip_extra,
            '[dns]',
            'servers = ["%s"]  # loopback only: no lookup may leave the machine' % dns_server,
            '[log]',
            'level = "debug"',
            *(['[metrics]', 'listen = "127.0.0.1:%d"' % link['metrics_port']] if link.get('metrics_port') else []),
            *(['[presence]', *presence] if presence else []),
            ''])
        if os.path.exists(self.config_path):
            os.unlink(self.config_path)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # holds a secret
        with os.fdopen(fd, 'w') as f:
            f.write(text)

    async def start(self):
        if not os.access(self.binary, os.X_OK):
            raise Fail('xsgw binary %s does not exist or is not executable' % self.binary)
        # XSGW_WRAP: a command to run xsgw under, e.g. valgrind (it keeps the pid, so signals reach xsgw)
        wrap = shlex.split(os.environ.get('XSGW_WRAP', ''))
        self.log('%s: start %s%s -c %s' % (self.name, ' '.join(wrap) + ' ' if wrap else '', self.binary,
                                            self.config_path))
        self.proc = await asyncio.create_subprocess_exec(
            *wrap, self.binary, '-c', self.config_path, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True, limit=1 << 24)
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self):
        with open(self.log_path, 'a', buffering=1) as f:
            while True:
                try:
                    raw = await self.proc.stdout.readline()
                except ValueError:                       # a line beyond the limit: take it in pieces
                    raw = await self.proc.stdout.read(1 << 20)
                if not raw:
                    break
                text = raw.decode(errors='replace').rstrip('\n')
                f.write(text + '\n')
                async with self._changed:
                    self.lines.append((time.monotonic(), text))
                    self._changed.notify_all()
            rc = await self.proc.wait()
            f.write('### exit status %d\n' % rc)
        async with self._changed:
            self.rc = rc
            self._changed.notify_all()
        self.log('%s: exited rc=%d' % (self.name, rc))

    @property
    def running(self):
        return self.proc is not None and self.rc is None

    def mark(self):
        """Index of the next line; pass it as start= to look only at what comes after now."""
        return len(self.lines)

    def grep(self, regex, start=0, end=None):
        """[(index, time, text)] of the lines in [start, end) that match regex."""
        rx = re.compile(regex)
        return [(i, t, s) for i, (t, s) in enumerate(self.lines[start:end], start) if rx.search(s)]

    def expect_none(self, regex, why, start=0, end=None):
        """Fail with `why` and the first offending line if a line in [start, end) matches regex."""
        found = self.grep(regex, start, end)
        check(not found, '%s: %s' % (why, found[0][2] if found else ''))

    async def expect(self, regex, within, start=0, count=1):
        """Wait until `count` lines from index `start` on match regex; returns the last of them
        as (index, time, text). Fails at the deadline or when xsgw exits first."""
        deadline = time.monotonic() + within
        self.log('%s: expect %d x /%s/ within %.1fs' % (self.name, count, regex, within))
        async with self._changed:
            while True:
                found = self.grep(regex, start)
                if len(found) >= count:
                    self.log('%s: seen: %s' % (self.name, found[count - 1][2]))
                    return found[count - 1]
                if self.rc is not None:
                    raise Fail('%s exited (status %d) before %d line(s) matching /%s/ (saw %d; log %s)'
                               % (self.name, self.rc, count, regex, len(found), self.log_path))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail('%s: %d line(s) matching /%s/ expected within %.1fs, saw %d (log %s)'
                               % (self.name, count, regex, within, len(found), self.log_path))
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except asyncio.TimeoutError:
                    pass

    def link_up(self):
        """The link's state as the log tells it: the last `link up` / `link down` line is up."""
        events = self.grep(r'xmpp: link (up|down)')
        return bool(events) and 'link up' in events[-1][2]

    async def ensure_link_up(self, within=15.0):
        if self.link_up():
            return
        downs = self.grep(r'xmpp: link down')
        await self.expect(r'xmpp: link up', within, start=downs[-1][0] + 1 if downs else 0)

    def send_signal(self, sig):
        self.log('%s: send %s' % (self.name, signal.Signals(sig).name))
        self.proc.send_signal(sig)

    def signal_state(self):
        """The process's signal masks from /proc (pending, blocked, caught), for a process that
        ignored SIGTERM: tells a blocked or uncaught signal from a stuck loop."""
        try:
            with open('/proc/%d/status' % self.proc.pid) as f:
                return ' '.join(l.strip().replace('\t', '') for l in f
                                if l.startswith(('State', 'SigPnd', 'ShdPnd', 'SigBlk', 'SigIgn', 'SigCgt')))
        except OSError as e:
            return 'no /proc status: %s' % e

    async def wait_exit(self, within):
        """Exit status, or None if still running after `within` seconds."""
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), within)
        except asyncio.TimeoutError:
            return None
        return self.rc

    async def stop(self, within=5.0):
        """SIGTERM, wait up to `within` s, then SIGKILL. Returns (exit status, seconds taken),
        status None when it had to be killed."""
        if not self.running:
            return self.rc, 0.0
        t0 = time.monotonic()
        self.send_signal(signal.SIGTERM)
        rc = await self.wait_exit(within)
        took = time.monotonic() - t0
        if rc is None:
            self.log('%s: still running %.1fs after SIGTERM: SIGKILL; %s' % (self.name, within, self.signal_state()))
            self.proc.kill()
            await self.wait_exit(10)
        return rc, took


# ---------------------------------------------------------------------------------------------
# the harness: one server, the first xsgw, the client, and whatever a scenario adds

async def log_in(name, server, workdir, clients):
    """NAME@xmpp.test (password NAMEpw) logged in to server with initial presence sent, added to
    clients. slixmpp logs through one logger: from a login on, every client's stanzas go to that
    login's file workdir/client-NAME-N.log (N: its place in clients)."""
    path = os.path.join(workdir, 'client-%s-%d.log' % (name, len(clients) + 1))
    log_to(path)
    c = Client('%s@%s' % (name, XMPP_DOMAIN), name + 'pw', server.ip)
    clients.append(c)
    try:
        await c.login(within=10)
    except ClientError as e:
        raise Fail('%s cannot log in to %s: %s (client log %s)' % (name, server.name, e, path)) from None
    return c


def resume(pid):
    """SIGCONT a process a scenario SIGSTOPped (None: nothing to do; gone: fine)."""
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


class Harness:
    def __init__(self, args):
        self.args = args
        self.workdir = os.path.abspath(args.workdir)
        self.server_name = args.server
        self.peers_dir = os.path.join(self.workdir, 'peers')
        self.log = None
        self.server = None
        self.main = None
        self.instances = []          # every xsgw started, in order
        self.stop_results = {}       # name -> (status, seconds) of instances stopped by scenarios
        self.clients = []
        self._users = {}             # user name -> its logged-in Client
        self.state = {}              # what one scenario leaves for a later one (e.g. a Call-ID)
        self.soft = []               # failed checks of the running scenario that did not stop it
        self.stopped_pid = None      # a SIGSTOPped server process to SIGCONT at teardown
        self._sip_port = 5080
        self.sip = None              # SipPeers, when a selected scenario needs the SIP side
        self.sip_error = None        # why the SIP peers could not start (fails only the scenarios needing them)
        self._tokens = 0
        self.upcoming = []           # names of the selected scenarios still to run after the current one
        self.server_down = None      # the main instance's `link down` line when a scenario left the server
                                     # stopped for the next one (m5_link_down_503 for x3_server_restart)

    def shortfall(self, key, cond, why):
        """A check of a STANDARDS requirement that xsgw is known not to meet (KNOWN_SHORTFALLS): when it
        fails, a `# KNOWN SHORTFALL` line is printed (every run shows it) instead of failing; when it
        holds, a `#` line says the shortfall is gone, so that its entry can be removed (the check is then
        a plain one again). A key not in KNOWN_SHORTFALLS makes it a soft check."""
        if key not in KNOWN_SHORTFALLS:
            return self.expect_soft(cond, why)
        if cond:
            print('# %s no longer seen (%s): remove it from KNOWN_SHORTFALLS in run.py' % (key, KNOWN_SHORTFALLS[key]),
                  flush=True)
        else:
            self.log('KNOWN SHORTFALL %s: %s' % (key, why))
            print('# KNOWN SHORTFALL %s, %s: %s' % (key, KNOWN_SHORTFALLS[key], why), flush=True)

    def expect_soft(self, cond, why):
        """A check whose failure fails the scenario at its end, not at once: what follows it still
        runs and may show more."""
        if not cond:
            self.log('soft FAIL: %s' % why)
            self.soft.append(why)

    def prepare_workdir(self):
        """Create DIR; remove what an earlier run of ours left there (and only that)."""
        os.makedirs(self.workdir, exist_ok=True)
        os.chmod(self.workdir, 0o755)    # the ejabberd user must reach DIR/peers
        for pattern in ('xsgw-*.log', 'xsgw-*.toml', 'client-*.log', 'run.log', 'presence.state'):
            for path in glob.glob(os.path.join(self.workdir, pattern)):
                os.unlink(path)
        self.log = RunLog(os.path.join(self.workdir, 'run.log'))
        self.server = Server(self.server_name, self.peers_dir, self.log)

    async def setup(self, with_sip):
        if os.path.isdir(self.peers_dir):
            await self.server.stop()        # a copy left running by an interrupted run
            await SipPeers(self.peers_dir, self.log).stop_leftovers()
            shutil.rmtree(self.peers_dir)
        os.makedirs(self.peers_dir)
        os.chmod(self.peers_dir, 0o755)
        out = await self.server.start()
        print('# %s' % out.splitlines()[-1], flush=True)
        print('# %s start took %.2fs (wall, from run.py)' % (self.server_name, self.server.start_times[-1]),
              flush=True)
        if with_sip:
            self.sip = SipPeers(self.peers_dir, self.log)
            try:
                await self.sip.start()
                print('# SIP peers (dnsmasq, kamailio, sipp bob + failover, bob registered) up in %.2fs'
                      % self.sip.start_time, flush=True)
            except SipError as e:
                self.sip_error = str(e)
                print('# SIP peers: %s' % e, flush=True)
        await make_certs(self.peers_dir, self.log)
        self.main = self.new_xsgw('main', SECRET, metrics_port=METRICS_PORT, presence=self.main_presence(),
                                  sip_extra=self.main_sip(), **MAIN)
        await self.main.start()

    @property
    def state_file(self):
        """The main instance's [presence] state_file (who watches whom, kept across its restarts)."""
        return os.path.join(self.workdir, 'presence.state')

    def main_sip(self):
        """S4: the main instance also speaks TLS (sips:127.0.0.1:5061) with the test certificates."""
        d = tls_dir(self.peers_dir)
        return ['tls_listen = "sips:127.0.0.1:%d"' % GATEWAY_TLS_PORT,
                'tls_certificate = "%s"' % os.path.join(d, 'sip.test.pem'),
                'tls_key = "%s"' % os.path.join(d, 'sip.test.key'),
                'tls_ca_file = "%s"' % os.path.join(d, 'ca.pem')]

    def main_presence(self):
        return MAIN_PRESENCE + ['state_file = "%s"' % self.state_file]

    def new_xsgw(self, name, secret, sip_port=None, sip_extra=(), presence=(), xmpp_extra=(), **link):
        """A further instance; [sip] listen on sip_port (default: the next of 5080, 5081, ...),
        sip_extra: more lines for its [sip] section, presence: lines of its [presence] section."""
        if sip_port is None:
            sip_port = self._sip_port
            self._sip_port += 1
        x = Xsgw(self.args.xsgw, self.workdir, name, self.server.ip, sip_port, secret, self.log,
                 sip_extra=sip_extra, presence=presence, xmpp_extra=xmpp_extra, **link)
        self.instances.append(x)
        return x

    async def stop_instance(self, x):
        self.stop_results[x.name] = await x.stop()
        self.log('%s: stop -> %r' % (x.name, self.stop_results[x.name]))

    async def alice(self):
        """alice@xmpp.test, logged in (again, if the server restarted since)."""
        return await self.user('alice')

    async def user(self, name):
        """NAME@xmpp.test (password NAMEpw), logged in (again, if the server restarted since) with
        initial presence sent. slixmpp logs through one logger: from a login on, every client's
        stanzas go to that login's file client-NAME-N.log."""
        c = self._users.get(name)
        if c is not None and c.up:
            return c
        c = await log_in(name, self.server, self.workdir, self.clients)
        self.log('%s: session %s' % (name, c.boundjid.full))
        self._users[name] = c
        return c

    async def iq(self, itype, to, payload, within=5.0):
        """Send an IQ as alice, return the answer (ET element); the answer must come from `to`
        and carry the request's id."""
        c = await self.alice()
        self.log('alice: send iq %s to %s: %s' % (itype, to, payload))
        try:
            r = await c.iq(itype, to, payload, within=within)
        except ClientError as e:
            raise Fail(str(e)) from None
        self.log('alice: got %s' % to_text(r))
        check(r.get('from') == to, 'answer from %r, expected %r: %s' % (r.get('from'), to, to_text(r)))
        return r

    async def barrier(self, ids):
        """Prove that each IQ in ids was answered exactly once: a ping sent after them is answered
        after any duplicate could have arrived (one link, stanzas in order)."""
        c = await self.alice()
        await self.iq('get', COMPONENT, "<ping xmlns='urn:xmpp:ping'/>")
        for i in ids:
            n = len(c.answers.get(i, []))
            check(n == 1, 'iq id=%s answered %d times, expected exactly once' % (i, n))

    async def teardown(self):
        resume(self.stopped_pid)
        for c in self.clients:
            await c.close()
        for x in self.instances:
            try:
                await x.stop()
            except Exception as e:   # keep going: the server must be stopped too
                self.log('%s: stop failed: %r' % (x.name, e))
        if self.sip is not None:
            await self.sip.stop()
        if self.server is not None:
            try:
                await self.server.stop()
            except Fail as e:
                print('# %s' % e, flush=True)

    def log_paths(self):
        paths = sorted(glob.glob(os.path.join(self.workdir, '*.log')))
        paths += sorted(p for p in glob.glob(os.path.join(self.peers_dir, '**', '*.*'), recursive=True)
                        if p.endswith(('.log', '.msg', '.err')))
        return paths

    def token(self, what):
        """A word unique in this run, to find one scenario's message among the others."""
        self._tokens += 1
        return 'e2e-%s-%d-%d' % (what, os.getpid(), self._tokens)

    def sip_peers(self):
        """The SIP peers, or Fail when they could not start."""
        check(self.sip is not None and self.sip_error is None, 'SIP peers not available: %s' % self.sip_error)
        return self.sip


def result_of(r):
    """Fail unless r is an IQ result."""
    check(r.get('type') == 'result', 'expected type=result, got: %s' % to_text(r))
    return r


def child(el, namespace, name):
    for c in el:
        if ns(c.tag) == namespace and local(c.tag) == name:
            return c
    raise Fail('no <%s xmlns=%r/> in %s' % (name, namespace, to_text(el)))


def expect_error(r, conditions, etype):
    """Fail unless r is an IQ error with one of `conditions` and the error type. (Its id is the
    request's by construction: the client pairs answers with requests by id.)"""
    check(r.get('type') == 'error', 'expected type=error, got: %s' % to_text(r))
    cond = error_condition(r)
    check(cond is not None and cond[1] in conditions,
          'expected error condition %s, got %s: %s' % ('/'.join(conditions), cond, to_text(r)))
    check(cond[0] == etype, 'expected <error type=%r> for %s, got %r' % (etype, cond[1], cond[0]))


# ---------------------------------------------------------------------------------------------
# scenarios (X* of STANDARDS.md); each is a send / expect list against the real peers

async def x1_x2_handshake(h):
    m = h.main
    await m.expect(r'xmpp: connecting to %s:%d \(attempt 1\)' % (re.escape(h.server.ip), COMP_PORT), within=10)
    up = await m.expect(r'xmpp: link up', within=10)
    m.expect_none(r'xmpp: link down', 'link up only after a failed attempt', 0, up[0])


async def x6_disco(h):
    await h.main.ensure_link_up()
    r = result_of(await h.iq('get', COMPONENT, "<query xmlns='%s'/>" % NS_DISCO_INFO))
    ids = [r.get('id')]
    q = child(r, NS_DISCO_INFO, 'query')
    idents = [(i.get('category'), i.get('type')) for i in q if local(i.tag) == 'identity']
    check(('gateway', 'simple') in idents, 'no identity gateway/simple, got %s' % idents)
    features = {f.get('var') for f in q if local(f.tag) == 'feature'}
    missing = REQUIRED_FEATURES - features
    check(not missing, 'features missing: %s (got %s)' % (sorted(missing), sorted(features)))

    r = result_of(await h.iq('get', COMPONENT, "<query xmlns='%s'/>" % NS_DISCO_ITEMS))
    ids.append(r.get('id'))
    q = child(r, NS_DISCO_ITEMS, 'query')
    check(len(q) == 0, 'disco#items not empty: %s' % to_text(q))
    await h.barrier(ids)


async def x7_version_ping(h):
    await h.main.ensure_link_up()
    r = result_of(await h.iq('get', COMPONENT, "<query xmlns='%s'/>" % NS_VERSION))
    ids = [r.get('id')]
    q = child(r, NS_VERSION, 'query')
    name, version = child(q, NS_VERSION, 'name').text, child(q, NS_VERSION, 'version').text
    check(name == 'xsgw', 'version name %r, expected "xsgw"' % name)
    check(version and version.strip(), 'empty <version/>: %s' % to_text(r))
    for to in (COMPONENT, USER_JID):
        r = result_of(await h.iq('get', to, "<ping xmlns='%s'/>" % NS_PING))
        ids.append(r.get('id'))
    await h.barrier(ids)


async def x8_unknown_iq(h):
    await h.main.ensure_link_up()
    ids = []
    for itype, to, payload in (('get', COMPONENT, "<query xmlns='urn:example:nope'/>"),
                               ('set', COMPONENT, "<frob xmlns='urn:example:nope'><x/></frob>"),
                               ('get', USER_JID, "<query xmlns='urn:example:nope'/>")):
        r = await h.iq(itype, to, payload)
        expect_error(r, ('service-unavailable',), 'cancel')
        ids.append(r.get('id'))
    await h.barrier(ids)


async def x9_iq_gateway(h):
    await h.main.ensure_link_up()
    r = result_of(await h.iq('get', COMPONENT, "<query xmlns='%s'/>" % NS_GATEWAY))
    ids = [r.get('id')]
    q = child(r, NS_GATEWAY, 'query')
    check((child(q, NS_GATEWAY, 'desc').text or '').strip(), 'empty <desc/>: %s' % to_text(r))
    child(q, NS_GATEWAY, 'prompt')
    for prompt in ('alice@sip.example.org', 'sip:alice@sip.example.org'):
        r = result_of(await h.iq('set', COMPONENT,
                                 "<query xmlns='%s'><prompt>%s</prompt></query>" % (NS_GATEWAY, prompt)))
        ids.append(r.get('id'))
        jid = child(child(r, NS_GATEWAY, 'query'), NS_GATEWAY, 'jid').text
        check(jid == USER_JID, 'prompt %r gave jid %r, expected %r' % (prompt, jid, USER_JID))
    r = await h.iq('set', COMPONENT, "<query xmlns='%s'><prompt>no-at-sign</prompt></query>" % NS_GATEWAY)
    expect_error(r, ('bad-request', 'jid-malformed'), 'modify')
    ids.append(r.get('id'))
    await h.barrier(ids)


def gaps(lines):
    return [round(b[1] - a[1], 3) for a, b in zip(lines, lines[1:])]


async def x3_wrong_secret(h):
    await h.main.ensure_link_up()
    main_mark = h.main.mark()
    w = h.new_xsgw('wrong', WRONG_SECRET, **REFUSED)
    await w.start()
    # six attempts = five refusals and five backoff delays: 200, 400, 800, 1000, 1000 ms ceilings
    await w.expect(r'xmpp: connecting to', within=15, count=6)
    attempts = w.grep(r'xmpp: connecting to')
    refusals = w.grep(r'not-authorized')
    delays = [int(d) for _, _, s in w.grep(r'reconnecting in \d+ ms') for d in re.findall(r'reconnecting in (\d+) ms', s)]
    g = gaps(attempts)
    h.log('wrong: attempt gaps %s s, announced delays %s ms' % (g, delays))
    await h.stop_instance(w)
    w.expect_none(r'link up', 'wrong secret reached link up')
    check(len(refusals) >= 2, 'expected not-authorized at least twice, saw %d (log %s)' % (len(refusals), w.log_path))
    check(all(d <= REFUSED['reconnect_max'] for d in delays),
          'a reconnect delay exceeds reconnect_max=%d: %s' % (REFUSED['reconnect_max'], delays))
    # a quarter of reconnect_min: the shortest delay is half of it, minus read-out jitter
    check(min(g) >= REFUSED['reconnect_min'] / 4000.0, 'attempts too close (busy loop?): gaps %s s' % g)
    check(sum(g[-2:]) > sum(g[:2]), 'reconnect gaps do not grow: %s s (delays %s ms)' % (g, delays))
    h.main.expect_none(r'xmpp: link down', 'the first instance lost its link meanwhile', main_mark)


async def x3_conflict(h):
    await h.main.ensure_link_up()
    main_mark = h.main.mark()
    s = h.new_xsgw('second', SECRET, **REFUSED)
    await s.start()
    if h.server_name == 'prosody':
        # Prosody refuses a second connection for a connected component with <conflict/>
        await s.expect(r'conflict', within=10)
        first = s.grep(r'xmpp: connecting to')[0][1]
        # fixed observation window: count attempts in the 3 s after the first one
        await asyncio.sleep(max(0.0, first + 3.0 - time.monotonic()))
        n = len([a for a in s.grep(r'xmpp: connecting to') if a[1] <= first + 3.0])
        g = gaps(s.grep(r'xmpp: connecting to'))
        h.log('second: %d attempts in 3 s, gaps %s s' % (n, g))
        await h.stop_instance(s)
        s.expect_none(r'link up', 'second instance reached link up')
        check(n >= 2, 'no retry after conflict within 3 s (%d attempt)' % n)
        check(n <= 8, '%d connection attempts in 3 s: not paced by the backoff (gaps %s s)' % (n, g))
        check(len(s.grep(r'conflict')) >= 2, 'conflict expected on every retry, saw %d' % len(s.grep(r'conflict')))
    else:
        # jabberd2 and ejabberd accept several connections for one component domain and
        # spread its stanzas across them, keepalive pings included: both instances must
        # stay up through several keepalive windows although pings land on either.
        s2 = h.new_xsgw('third', SECRET, **MAIN)
        await s2.start()
        await s.expect(r'xmpp: link up', within=10)
        up = s2.mark()
        await s2.expect(r'xmpp: link up', within=10)
        # Both idle instances ping every ~1 s (interval 1 s): 6 pings are 3 or more windows.
        await s2.expect(r'>> <iq[^>]*xsgw-keepalive-', within=20, start=up, count=6)
        s2.expect_none(r'xmpp: link down', 'an idle instance sharing the domain dropped its link')
        await h.stop_instance(s2)
        await h.stop_instance(s)
    h.main.expect_none(r'xmpp: link down', 'the first instance lost its link meanwhile', main_mark)


async def x3_dead_link(h):
    m = h.main
    await m.ensure_link_up()
    pid = await h.server.pid()
    mark = m.mark()
    h.log('SIGSTOP %s pid %d' % (h.server_name, pid))
    os.kill(pid, signal.SIGSTOP)
    h.stopped_pid = pid
    t_stop = time.monotonic()
    try:
        within = MAIN['keepalive_interval'] + MAIN['keepalive_timeout'] + 5
        ka = await m.expect(r'keepalive timeout', within=within, start=mark)
        down = await m.expect(r'xmpp: link down', within=5, start=mark)
    finally:
        h.log('SIGCONT %s pid %d' % (h.server_name, pid))
        os.kill(pid, signal.SIGCONT)
        h.stopped_pid = None
    m.expect_none(r'xmpp: link up', 'link up while the server was stopped', mark, down[0])
    await m.expect(r'xmpp: link up', within=MAIN['reconnect_max'] / 1000.0 + 10, start=down[0] + 1)
    h.log('keepalive timeout seen %.1fs after SIGSTOP' % (ka[1] - t_stop))
    result_of(await h.iq('get', COMPONENT, "<ping xmlns='%s'/>" % NS_PING, within=10))


async def x3_server_restart(h):
    m = h.main
    down, h.server_down = h.server_down, None
    if down is None:
        await m.ensure_link_up()
        mark = m.mark()
        await h.server.stop()
        down = await m.expect(r'xmpp: link down', within=10, start=mark)
    else:
        # m5_link_down_503 ran just before, stopped the server and saw `link down`: one outage for both
        h.log('server stopped by the scenario before; link down was: %s' % down[2])
    await h.server.start()
    await m.expect(r'xmpp: link up', within=MAIN['reconnect_max'] / 1000.0 + 10, start=down[0] + 1)
    result_of(await h.iq('get', COMPONENT, "<ping xmlns='%s'/>" % NS_PING, within=10))


async def x10_sigterm(h):
    m = h.main
    check(m.running, 'xsgw main is not running (status %s)' % m.rc)
    mark = m.mark()
    t0 = time.monotonic()
    m.send_signal(signal.SIGTERM)
    rc = await m.wait_exit(5.0)
    check(rc is not None, 'still running 5 s after SIGTERM')
    h.stop_results['main'] = (rc, time.monotonic() - t0)
    check(rc == 0, 'exit status %d after SIGTERM, expected 0' % rc)
    check(m.grep(r'xsgw: stopping', mark), 'no "xsgw: stopping" in the log after SIGTERM')
    # the instances that scenarios stopped while refused / reconnecting must have behaved the same
    bad = {n: r for n, r in h.stop_results.items() if r[0] != 0}
    check(not bad, 'instances that did not exit 0 within 5 s of SIGTERM: %s'
          % ', '.join('%s (status %s after %.1fs)' % (n, r[0], r[1]) for n, r in bad.items()))


async def s1_secret_not_logged(h):
    for x in h.instances:
        check(x.lines, '%s wrote no log' % x.name)
        for secret in (SECRET, WRONG_SECRET):
            x.expect_none(re.escape(secret), '%s logs the component secret' % x.name)


# ---------------------------------------------------------------------------------------------
# messaging scenarios (M, E, D, A, S of STANDARDS.md): the SIP side is Kamailio (registrar for
# simple.test, found through NAPTR/SRV), sipp UASes (bob, the failover target) and sipp UACs.

NS_CHATSTATES = 'http://jabber.org/protocol/chatstates'
NS_XHTML_IM = 'http://jabber.org/protocol/xhtml-im'
NS_XHTML = 'http://www.w3.org/1999/xhtml'
NS_ISCOMPOSING = 'urn:ietf:params:xml:ns:im-iscomposing'
NS_RECEIPTS = 'urn:xmpp:receipts'
STANZA_NS = ('jabber:client', 'jabber:component:accept', '')
ALICE_SIP = 'sip:alice*%s@%s' % (XMPP_DOMAIN, SIP_DOMAIN)    # alice as SIP users address her
BOB_SIP = 'sip:bob@simple.test'                             # registered at Kamailio by a sipp UAS
BOB_JID = 'bob*simple.test@' + COMPONENT                    # bob as XMPP users address him
GATEWAY = '127.0.0.1:5080'                                  # the main instance's [sip] listen
KAM = '%s:%d' % KAMAILIO
DAVE_UAS = ('127.0.0.1', 5071)     # dave@simple.test: a sipp UAS answering 202 (m9_receipt), started on first use
DAVE_JID = 'dave*simple.test@' + COMPONENT
LIMITS_PORT = 5085                 # [sip] listen of the s5_message_size instance
DOMAINS_PORT = 5086                # [sip] listen of the s7_allowed_domains instance
MAX_MESSAGE_BYTES = 2000           # its [sip] max_message_bytes
# RFC 6120 section 8.3.3: the error type of each condition the scenarios expect
ERROR_TYPES = {'item-not-found': 'cancel', 'remote-server-not-found': 'cancel', 'jid-malformed': 'modify',
               'bad-request': 'modify', 'not-acceptable': 'modify', 'policy-violation': 'modify',
               'forbidden': 'auth', 'internal-server-error': 'cancel'}
ISCOMPOSING_ACTIVE = ('<?xml version="1.0" encoding="UTF-8"?>\r\n'
                      '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
                      '<state>active</state><contenttype>text/plain</contenttype><refresh>60</refresh>'
                      '</isComposing>')


def messaging(scenario):
    """Mark a scenario as needing the gateway's messaging and the SIP peers (--group messaging)."""
    scenario.group = 'messaging'
    return scenario


def bare(jid):
    return (jid or '').split('/', 1)[0]


def stanza_child(el, name):
    """The direct child <name/> of a stanza in the stanza namespace, or None."""
    for c in el:
        if local(c.tag) == name and ns(c.tag) in STANZA_NS:
            return c
    return None


def body_of(el):
    b = stanza_child(el, 'body')
    return None if b is None else (b.text or '')


def has_child(el, namespace, name):
    return any(ns(c.tag) == namespace and local(c.tag) == name for c in el)


def error_text(el):
    for c in el:
        if local(c.tag) == 'error':
            for t in c:
                if local(t.tag) == 'text':
                    return t.text or ''
    return None


async def sip_wait(awaitable):
    """Await a SIP-side expectation; its SipError becomes this scenario's failure."""
    try:
        return await awaitable
    except SipError as e:
        raise Fail(str(e)) from None


async def alice_wait(c, pred, within, start, what):
    try:
        return await c.expect_message(pred, within, start, what)
    except ClientError as e:
        raise Fail('alice: %s' % e) from None


async def alice_sends(h, to, payload, mtype='chat', gw=None):
    """alice sends <message id=new to=to>payload</message> once gw (default: the main instance) has
    its link up; returns (client, id, message mark)."""
    await (gw or h.main).ensure_link_up()
    c = await h.alice()
    msg_id = h.token('msg')
    mark = c.message_mark()
    h.log('alice: send message id=%s to %s: %s' % (msg_id, to, payload))
    c.send_message(to, msg_id, payload, mtype)
    return c, msg_id, mark


def from_alice(m):
    return m.uri_of('from').split(';', 1)[0] == ALICE_SIP


def error_for(c, msg_id, start):
    """The first type=error message alice got for msg_id (from index start on), or None."""
    for m in c.messages[start:]:
        if m.get('id') == msg_id and m.get('type') == 'error':
            return m
    return None


async def delivered(trace, pred, within, start, what, c, msg_id, cmark):
    """The MESSAGE (in a sipp UAS trace) that alice's message msg_id became; fails at once if she
    gets an error for it instead."""
    def refused():
        err = error_for(c, msg_id, cmark)
        return err is not None and 'alice got an error for message %s: %s' % (msg_id, to_text(err))
    return await sip_wait(trace.expect(pred, within, start, what, abort=refused))


async def no_error_for(h, c, msg_id, start):
    """alice has no error for msg_id. A ping through the server and the component is answered after
    any error the gateway sent before it; call this once the SIP final response reached the gateway."""
    await h.iq('get', COMPONENT, "<ping xmlns='%s'/>" % NS_PING)
    err = error_for(c, msg_id, start)
    check(err is None, 'alice got an error for message %s: %s' % (msg_id, to_text(err) if err is not None else ''))


async def expect_message_error(h, c, msg_id, to, start, conditions, within=10.0):
    """alice gets type=error for msg_id (E3: same id, from the address she wrote to) with one of
    `conditions` and its RFC 6120 error type. Returns the stanza."""
    el = await alice_wait(c, lambda m: m.get('id') == msg_id, within, start, 'an answer to message id=%s' % msg_id)
    h.log('alice: got %s' % to_text(el))
    check(el.get('type') == 'error', 'expected a type=error message for id=%s, got: %s' % (msg_id, to_text(el)))
    check(bare(el.get('from')) == to, 'error from %r, expected %r (E3): %s' % (el.get('from'), to, to_text(el)))
    cond = error_condition(el)
    check(cond is not None and cond[1] in conditions,
          'expected error condition %s, got %s: %s' % ('/'.join(conditions), cond, to_text(el)))
    check(cond[0] == ERROR_TYPES[cond[1]], 'expected <error type=%r> for %s, got %r: %s'
          % (ERROR_TYPES[cond[1]], cond[1], cond[0], to_text(el)))
    return el


async def sip_sends(h, sip, target, body, ctype='text/plain;charset=UTF-8', expect=(202,), ruri=ALICE_SIP,
                    name='message', transport='u1'):
    """bob@simple.test sends a MESSAGE to ruri through target ("ip:port") over transport (sipp -t: u1
    UDP, t1 TCP); fails unless the final status is one of `expect`. Returns the SipResult."""
    r = await sip.message(target, ruri, BOB_SIP, ruri, ctype, body, expect=expect, name=name, transport=transport)
    check(r.status in expect, 'MESSAGE %s via %s: final status %s, expected %s (sipp trace %s)'
          % (ruri, target, r.status if r.final else 'none', '/'.join(map(str, expect)), r.trace_path))
    problem = r.final.reason_problem()
    check(problem is None, 'MESSAGE %s via %s: the %d response is malformed: %s (sipp trace %s)'
          % (ruri, target, r.status, problem, r.trace_path))
    return r


@messaging
async def m1_xmpp_to_sip(h):
    """M1, M2, D1: a chat message with a UTF-8 body, subject and thread reaches bob, registered at
    the Kamailio that simple.test's NAPTR/SRV records name."""
    sip = h.sip_peers()
    body, subject, thread = 'héllo ✓ 日本', 'subject ✓ %s' % h.token('m1'), h.token('thread')
    mark = sip.bob.trace.mark()
    c, msg_id, cmark = await alice_sends(h, BOB_JID, '<body>%s</body><subject>%s</subject><thread>%s</thread>'
                                         % (escape(body), escape(subject), thread))
    m = await delivered(sip.bob.trace, from_alice, 10, mark, 'a MESSAGE from %s at bob' % ALICE_SIP, c, msg_id, cmark)
    check(m.uri_of('to') == BOB_SIP, 'To %r, expected %s' % (m.header('to'), BOB_SIP))
    # A7: the resource travels as the GRUU parameter of the From URI, inside <>; after the > it would
    # be a header parameter that means nothing
    check(not re.search(r'>.*;\s*gr\b', m.header('from') or ''),
          'From %r: gr= is a header parameter, it belongs inside <> as a URI parameter (A7)' % m.header('from'))
    mtype, params = m.media_type()
    check(mtype == 'text/plain' and params.get('charset', '').lower() == 'utf-8',
          'Content-Type %r, expected text/plain;charset=UTF-8' % m.header('content-type'))
    check(m.body == body.encode('utf-8'), 'body %r, expected the bytes of %r' % (m.body, body))
    check(m.header('subject') == subject, 'Subject %r, expected %r' % (m.header('subject'), subject))
    check(m.header('contact') is None, 'out-of-dialog MESSAGE carries Contact %r (M2)' % m.header('contact'))
    check(thread in (m.call_id or ''), 'Call-ID %r does not carry the thread %r (M1)' % (m.call_id, thread))
    await sip_wait(sip.kamailio_log.expect(r'REQ MESSAGE sip:bob@simple\.test .* ci=%s ' % re.escape(m.call_id), 3))
    check(sip.dns_log.grep(r'query\[NAPTR\] simple\.test from'), 'no NAPTR lookup of simple.test in %s' % sip.dns_log.path)
    await sip_wait(sip.kamailio_log.expect(r'REPLY 200 .* ci=%s \(' % re.escape(m.call_id), 3))
    await no_error_for(h, c, msg_id, cmark)


@messaging
async def m6_sip_to_xmpp(h):
    """M6, M7, M2, A9: a text/plain MESSAGE to sip:alice*xmpp.test@sip.test, once through Kamailio
    (which finds sip.test by NAPTR/SRV) and once straight to the gateway, reaches alice as a chat
    message from bob*simple.test@sip.test; the sender gets 202 without Contact or body."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    for via, target in (('kamailio', KAM), ('direct', GATEWAY)):
        body = 'héllo ✓ 日本 %s' % h.token('m6-' + via)
        mark, kmark = c.message_mark(), sip.kamailio_log.mark()
        r = await sip_sends(h, sip, target, body, name='m6-' + via)
        check(r.final.header('contact') is None and not r.final.body,
              '202 carries Contact %r / a %d-byte body (M2)' % (r.final.header('contact'), len(r.final.body)))
        el = await alice_wait(c, lambda m: body_of(m) == body, 5, mark, 'a message with body %r' % body)
        h.log('alice: got %s' % to_text(el))
        check(bare(el.get('from')) == BOB_JID, 'message from %r, expected %s' % (el.get('from'), BOB_JID))
        check(el.get('type') == 'chat', 'message type %r, expected chat (M7 default)' % el.get('type'))
        if via == 'kamailio':
            await sip_wait(sip.kamailio_log.expect(r'SEND MESSAGE sip:alice\*xmpp\.test@sip\.test to 127\.0\.0\.1:5080/',
                                                   3, kmark))


@messaging
async def m5_unknown_user(h):
    """M5, E2, E3: Kamailio answers 404 for nobody@simple.test; alice gets item-not-found with her id."""
    sip = h.sip_peers()
    to = 'nobody*simple.test@' + COMPONENT
    kmark = sip.kamailio_log.mark()
    c, msg_id, cmark = await alice_sends(h, to, '<body>to nobody</body>')
    el = await expect_message_error(h, c, msg_id, to, cmark, ('item-not-found',))
    check(sip.kamailio_log.grep(r'NOUSER sip:nobody@simple\.test', kmark), 'Kamailio did not see the MESSAGE to nobody')
    text = error_text(el)
    check(text and 'Not Found' in text, 'error <text> %r does not carry the reason phrase "Not Found" (E3)' % text)


@messaging
async def m5_unresolvable(h):
    """M5, E1: nowhere.test does not exist (NXDOMAIN): remote-server-not-found."""
    sip = h.sip_peers()
    to = 'bob*nowhere.test@' + COMPONENT
    c, msg_id, cmark = await alice_sends(h, to, '<body>to nowhere</body>')
    await expect_message_error(h, c, msg_id, to, cmark, ('remote-server-not-found',))
    check(sip.dns_log.grep(r'query\[\w+\] (_sips?\._(udp|tcp)\.)?nowhere\.test from'),
          'the gateway never asked the test DNS about nowhere.test (%s)' % sip.dns_log.path)


@messaging
async def d5_failover(h):
    """D4, D5: failover.test's first SRV target (127.0.0.3, priority 10) is dead; the message is
    delivered through the second (a sipp UAS on 127.0.0.4, priority 20) and alice gets no error."""
    sip = h.sip_peers()
    body = 'failover %s' % h.token('d5')
    mark, bmark = sip.failover.trace.mark(), sip.bob.trace.mark()
    t0 = time.monotonic()
    c, msg_id, cmark = await alice_sends(h, 'bob*failover.test@' + COMPONENT, '<body>%s</body>' % body)
    # Timer F (32 s) bounds a UDP attempt that sees no ICMP error; on loopback the error is immediate
    m = await delivered(sip.failover.trace, lambda m: m.body == body.encode(), 40, mark,
                        'the MESSAGE at the second SRV target', c, msg_id, cmark)
    h.log('d5: delivered through the second target %.2fs after sending' % (time.monotonic() - t0))
    check(m.uri_of('to') == 'sip:bob@failover.test', 'To %r, expected sip:bob@failover.test' % m.header('to'))
    check(not sip.bob.trace.received(bmark), 'bob@simple.test got a MESSAGE meant for failover.test')
    # the priority-10 target comes first (D4): it must at least have been looked up
    check(sip.dns_log.grep(r'query\[(A|AAAA)\] dead\.failover\.test from'),
          'the gateway never looked up the priority-10 target dead.failover.test (%s)' % sip.dns_log.path)
    await no_error_for(h, c, msg_id, cmark)


@messaging
async def m4_large_over_tcp(h):
    """M4: a 2000-byte body (> 1300 bytes) goes over TCP, which simple.test's NAPTR offers (D2T)."""
    sip = h.sip_peers()
    head = 'm4 %s ' % h.token('m4')
    body = (head + 'x' * 2000)[:2000]
    mark = sip.bob.trace.mark()
    c, msg_id, cmark = await alice_sends(h, BOB_JID, '<body>%s</body>' % body)
    m = await delivered(sip.bob.trace, lambda m: m.body.startswith(head.encode()), 10, mark,
                        'the 2000-byte MESSAGE at bob', c, msg_id, cmark)
    check(m.body == body.encode(), 'body of %d bytes differs from the 2000 sent' % len(m.body))
    line = await sip_wait(sip.kamailio_log.expect(r'REQ MESSAGE .* ci=%s ' % re.escape(m.call_id), 3))
    check('/tcp)' in line, 'the gateway sent the 2000-byte MESSAGE to Kamailio over %s, not TCP: %s'
          % (line.split('/')[-1].split(')')[0], line.strip()))
    await sip_wait(sip.kamailio_log.expect(r'REPLY 200 .* ci=%s \(' % re.escape(m.call_id), 3))
    await no_error_for(h, c, msg_id, cmark)


@messaging
async def m6_cpim_html_415(h):
    """M6: message/cpim is unwrapped; text/html becomes a plain body plus XHTML-IM; any other
    content type gets 415 with Accept, and nothing reaches alice."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    inner = 'cpim ✓ %s' % h.token('cpim')
    cpim = ('From: <%s>\r\nTo: <%s>\r\nDateTime: 2026-01-01T00:00:00Z\r\n\r\n'
            'Content-Type: text/plain;charset=UTF-8\r\n\r\n%s' % (BOB_SIP, ALICE_SIP, inner))
    mark = c.message_mark()
    await sip_sends(h, sip, GATEWAY, cpim, ctype='message/cpim', name='m6-cpim')
    el = await alice_wait(c, lambda m: body_of(m) is not None and inner in body_of(m), 5, mark,
                          'the CPIM message with body %r' % inner)
    check(body_of(el) == inner, 'CPIM: body %r, expected exactly %r' % (body_of(el), inner))
    check(bare(el.get('from')) == BOB_JID, 'CPIM: message from %r, expected %s' % (el.get('from'), BOB_JID))

    word = h.token('html')
    html = '<html><body><p>Hello <b>bold</b> %s</p></body></html>' % word
    mark = c.message_mark()
    await sip_sends(h, sip, GATEWAY, html, ctype='text/html;charset=UTF-8', name='m6-html')
    el = await alice_wait(c, lambda m: body_of(m) is not None and word in body_of(m), 5, mark,
                          'the HTML message as a plain body')
    h.log('alice: got %s' % to_text(el))
    check(' '.join(body_of(el).split()) == 'Hello bold %s' % word,
          'HTML: plain body %r, expected "Hello bold %s"' % (body_of(el), word))
    xhtml = [x for x in el if ns(x.tag) == NS_XHTML_IM and local(x.tag) == 'html']
    check(xhtml, 'HTML: no <html xmlns=%r/> (XHTML-IM): %s' % (NS_XHTML_IM, to_text(el)))
    check(has_child(xhtml[0], NS_XHTML, 'body'), 'HTML: XHTML-IM without <body xmlns=%r/>' % NS_XHTML)
    check('bold' in ''.join(xhtml[0].itertext()), 'HTML: XHTML-IM lost the text: %s' % to_text(xhtml[0]))

    unknown = 'unknown %s' % h.token('415')
    mark = c.message_mark()
    r = await sip_sends(h, sip, GATEWAY, unknown, ctype='application/x-unknown', expect=(415,), name='m6-415')
    accept = r.final.header('accept')
    check(accept and 'text/plain' in accept.lower(), '415 without an Accept header listing text/plain: %r' % accept)
    # barrier: a message sent after the refused one arrives; the refused one must not be before it
    after = 'after 415 %s' % h.token('415')
    await sip_sends(h, sip, GATEWAY, after, name='m6-after-415')
    await alice_wait(c, lambda m: body_of(m) == after, 5, mark, 'the message sent after the 415')
    leaked = [m for m in c.messages[mark:] if unknown in to_text(m)]
    check(not leaked, 'the application/x-unknown body reached alice: %s' % (to_text(leaked[0]) if leaked else ''))


@messaging
async def m8_chat_states(h):
    """M8, M3: a body-less <composing/> becomes application/im-iscomposing+xml with state active
    (never an empty text MESSAGE); isComposing active from SIP becomes <composing/>."""
    sip = h.sip_peers()
    mark = sip.bob.trace.mark()
    c, msg_id, cmark = await alice_sends(h, BOB_JID, "<composing xmlns='%s'/>" % NS_CHATSTATES)
    m = await delivered(sip.bob.trace, from_alice, 10, mark, 'a MESSAGE from %s at bob' % ALICE_SIP, c, msg_id, cmark)
    check(m.media_type()[0] == 'application/im-iscomposing+xml',
          'Content-Type %r, expected application/im-iscomposing+xml' % m.header('content-type'))
    try:
        doc = ET.fromstring(m.body)
    except ET.ParseError as e:
        raise Fail('isComposing body is not XML (%s): %r' % (e, m.body)) from None
    check(ns(doc.tag) == NS_ISCOMPOSING and local(doc.tag) == 'isComposing',
          'body root %s, expected {%s}isComposing' % (doc.tag, NS_ISCOMPOSING))
    state = doc.find('{%s}state' % NS_ISCOMPOSING)
    check(state is not None and (state.text or '').strip() == 'active',
          'isComposing state %r, expected active' % (None if state is None else state.text))
    await sip_wait(sip.kamailio_log.expect(r'REPLY 200 .* ci=%s \(' % re.escape(m.call_id), 3))
    await no_error_for(h, c, msg_id, cmark)
    texts = [x for x in sip.bob.trace.received(mark) if from_alice(x) and x.media_type()[0] == 'text/plain']
    check(not texts, 'a body-less chat state became a text MESSAGE (M3): %s' % (texts[0].summary() if texts else ''))

    mark = c.message_mark()
    await sip_sends(h, sip, GATEWAY, ISCOMPOSING_ACTIVE, ctype='application/im-iscomposing+xml', name='m8-active')
    el = await alice_wait(c, lambda m: has_child(m, NS_CHATSTATES, 'composing'), 5, mark, 'a <composing/> message')
    h.log('alice: got %s' % to_text(el))
    check(bare(el.get('from')) == BOB_JID, '<composing/> from %r, expected %s' % (el.get('from'), BOB_JID))
    check(not body_of(el), '<composing/> came with a body %r' % body_of(el))


@messaging
async def a9_foreign_request_uri(h):
    """A9: a MESSAGE whose Request-URI host is not sip.test, sent straight to the gateway, is refused
    (403/404) and relayed nowhere: not to alice, not to the foreign domain."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    foreign = 'sip:alice*%s@other.test' % XMPP_DOMAIN
    body = 'foreign %s' % h.token('a9')
    mark, dmark, kmark = c.message_mark(), sip.dns_log.mark(), sip.kamailio_log.mark()
    await sip_sends(h, sip, GATEWAY, body, ruri=foreign, expect=(403, 404), name='a9-foreign')
    after = 'after a9 %s' % h.token('a9')
    await sip_sends(h, sip, GATEWAY, after, name='a9-after')
    await alice_wait(c, lambda m: body_of(m) == after, 5, mark, 'the message sent after the refused one')
    leaked = [m for m in c.messages[mark:] if body in to_text(m)]
    check(not leaked, 'the MESSAGE for other.test reached alice: %s' % (to_text(leaked[0]) if leaked else ''))
    check(not sip.dns_log.grep(r'other\.test', dmark), 'the gateway looked up other.test (relaying?): %s'
          % (sip.dns_log.grep(r'other\.test', dmark) or [''])[0])
    check(not sip.kamailio_log.grep(r'other\.test', kmark), 'the MESSAGE for other.test reached Kamailio')


@messaging
async def a2_no_separator(h):
    """A2: bob@sip.test has no separator: an error (item-not-found or jid-malformed), nothing to SIP."""
    sip = h.sip_peers()
    to = 'bob@' + COMPONENT
    mark, dmark = sip.bob.trace.mark(), sip.dns_log.mark()
    c, msg_id, cmark = await alice_sends(h, to, '<body>no separator</body>')
    await expect_message_error(h, c, msg_id, to, cmark, ('item-not-found', 'jid-malformed'))
    got = sip.bob.trace.received(mark)
    check(not got, 'bob got a MESSAGE: %s' % (got[0].summary() if got else ''))
    check(not sip.dns_log.grep(r'query', dmark), 'the gateway looked something up for bob@sip.test: %s'
          % (sip.dns_log.grep(r'query', dmark) or [''])[0])


@messaging
async def s3_subject_crlf(h):
    """S3: a subject with CR LF and a header line in it never becomes a header of its own: bob gets
    the MESSAGE without X-Injected (or alice gets an error and nothing is sent)."""
    sip = h.sip_peers()
    body = 's3 %s' % h.token('s3')
    mark = sip.bob.trace.mark()
    c, msg_id, cmark = await alice_sends(
        h, BOB_JID, '<subject>s3 subject&#13;&#10;X-Injected: 1&#13;&#10;&#13;&#10;injected body</subject>'
                    '<body>%s</body>' % body)
    deadline = time.monotonic() + 10
    while True:     # whichever comes first: the MESSAGE at bob or an error at alice
        got = [m for m in sip.bob.trace.received(mark) if from_alice(m)]
        err = [m for m in c.messages[cmark:] if m.get('id') == msg_id and m.get('type') == 'error']
        if got or err:
            break
        check(time.monotonic() < deadline, 'within 10 s neither a MESSAGE at bob nor an error at alice')
        await asyncio.sleep(0.05)
    if err:
        # refusing the subject is allowed, as an error about the sender's input; anything else is not
        cond = error_condition(err[0])
        check(cond is not None and cond[1] in ('bad-request', 'not-acceptable'),
              'alice got an error that does not refuse the subject (bad-request/not-acceptable): %s' % to_text(err[0]))
        h.log('s3: the gateway refused the subject: %s' % to_text(err[0]))
        return
    m = got[0]
    h.log('s3: headers at bob: %r' % m.head_text)
    injected = [l for l in m.head_text.split('\r\n') if l.lower().startswith('x-injected')]
    check(not injected, 'header injected through the subject: %r' % injected)
    check(m.header('x-injected') is None, 'X-Injected header present: %r' % m.header('x-injected'))
    check(m.body == body.encode(), 'body %r, expected %r (the subject leaked into it?)' % (m.body, body))
    for n, v in m.headers:
        check('\r' not in v and '\n' not in v, 'header %s holds CR/LF: %r' % (n, v))
    await sip_wait(sip.kamailio_log.expect(r'REPLY 200 .* ci=%s \(' % re.escape(m.call_id), 3))
    await no_error_for(h, c, msg_id, cmark)


def no_body(m):
    """Why a response m has a body or announces one (Content-Length other than 0, Content-Type),
    or None."""
    clen = m.header('content-length')
    if m.body:
        return 'a %d-byte body %r' % (len(m.body), m.body[:80])
    if clen is not None and clen.strip() != '0':
        return 'Content-Length %r' % clen
    if m.header('content-type') is not None:
        return 'Content-Type %r' % m.header('content-type')
    return None


@messaging
async def m2_no_contact(h):
    """M2 (RFC 3428 sections 4 and 7): the MESSAGE the gateway sends has no Contact; its 202 to a SIP
    MESSAGE (over UDP and over TCP) has neither Contact nor a body."""
    sip = h.sip_peers()
    body = 'm2 %s' % h.token('m2')
    mark = sip.bob.trace.mark()
    c, msg_id, cmark = await alice_sends(h, BOB_JID, '<body>%s</body>' % body)
    m = await delivered(sip.bob.trace, lambda m: m.body == body.encode(), 10, mark, 'the MESSAGE at bob',
                        c, msg_id, cmark)
    check(m.header('contact') is None, 'the gateway\'s MESSAGE carries Contact %r (M2)' % m.header('contact'))
    for transport in ('u1', 't1'):
        text = 'm2 %s %s' % (transport, h.token('m2'))
        mark = c.message_mark()
        r = await sip_sends(h, sip, GATEWAY, text, name='m2-202-' + transport, transport=transport)
        check(r.final.header('contact') is None, 'the 202 over %s carries Contact %r (M2)'
              % (r.final.transport, r.final.header('contact')))
        problem = no_body(r.final)
        check(problem is None, 'the 202 over %s has %s (M2)' % (r.final.transport, problem))
        await alice_wait(c, lambda x: body_of(x) == text, 5, mark, 'the message sent over %s' % r.final.transport)
    await sip_wait(sip.kamailio_log.expect(r'REPLY 200 .* ci=%s \(' % re.escape(m.call_id), 3))
    await no_error_for(h, c, msg_id, cmark)


def is_receipt(m, msg_id):
    """m holds <received xmlns='urn:xmpp:receipts' id=msg_id/>."""
    return any(ns(x.tag) == NS_RECEIPTS and local(x.tag) == 'received' and x.get('id') == msg_id for x in m)


def receipts_for(c, msg_id, start):
    """The messages alice got (from index start on) that are receipts for msg_id."""
    return [m for m in c.messages[start:] if is_receipt(m, msg_id)]


@messaging
async def m9_receipt(h):
    """M9: a XEP-0184 <request/> is answered with <received id=.../> from the contact once the SIP
    recipient answered 200 (bob's UAS), and never when it answered 202 (dave's UAS, standing for a
    store-and-forward server)."""
    sip = h.sip_peers()
    dave = await sip_wait(sip.registered_uas('dave', *DAVE_UAS, 202, 'Accepted'))
    for uas, to, status in ((sip.bob, BOB_JID, 200), (dave, DAVE_JID, 202)):
        body = 'm9 %d %s' % (status, h.token('m9'))
        mark, xmark = uas.trace.mark(), h.main.mark()
        c, msg_id, cmark = await alice_sends(h, to, "<body>%s</body><request xmlns='%s'/>" % (body, NS_RECEIPTS))
        m = await delivered(uas.trace, lambda m: m.body == body.encode(), 10, mark,
                            'the MESSAGE at %s' % uas.name, c, msg_id, cmark)
        # the gateway logs the final response, then sends any receipt: after this line, a ping
        # through the server is answered after the receipt (if any) reached alice
        await h.main.expect(r'sip: MESSAGE to %s: %d ' % (re.escape(m.uri_of('to')), status), 5, start=xmark)
        if status == 200:
            el = await alice_wait(c, lambda x: is_receipt(x, msg_id), 5, cmark,
                                  '<received xmlns=%r id=%r/>' % (NS_RECEIPTS, msg_id))
            h.log('alice: got %s' % to_text(el))
            check(el.get('from') == to, 'receipt from %r, expected %s: %s' % (el.get('from'), to, to_text(el)))
            check(el.get('type') != 'error', 'receipt of type error: %s' % to_text(el))
            check(body_of(el) is None, 'the receipt carries a body: %s' % to_text(el))
        await no_error_for(h, c, msg_id, cmark)
        got = receipts_for(c, msg_id, cmark)
        if status == 200:
            check(len(got) == 1, '%d receipts for message %s, expected exactly one' % (len(got), msg_id))
        else:
            check(not got, 'a receipt after a %d (M9: only 200 earns one): %s' % (status, to_text(got[0]) if got else ''))


@messaging
async def m12_bounce_notice(h):
    """M12: a MESSAGE to an XMPP user that does not exist is answered 202; the XMPP server bounces the
    stanza with an error, and the gateway tells the SIP sender with a short MESSAGE from the address
    he wrote to (bob's UAS gets it through Kamailio)."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    nobody = 'sip:nobody*%s@%s' % (XMPP_DOMAIN, SIP_DOMAIN)
    body = 'm12 %s' % h.token('m12')
    mark, xmark = sip.bob.trace.mark(), h.main.mark()
    await sip_sends(h, sip, GATEWAY, body, ruri=nobody, name='m12-nobody')
    line = await h.main.expect(r"bridge: MESSAGE from %s -> stanza id='([^']+)' to nobody@%s"
                               % (re.escape(BOB_SIP), re.escape(XMPP_DOMAIN)), 5, start=xmark)
    stanza_id = re.search(r"stanza id='([^']+)'", line[2]).group(1)
    bounce = await h.main.expect(r"bridge: stanza id='%s' bounced \(" % re.escape(stanza_id), 5, start=xmark)
    condition = re.search(r'bounced \(([^)]*)\)', bounce[2]).group(1)
    h.log('m12: %s bounced the message to nobody@%s with %s' % (h.server_name, XMPP_DOMAIN, condition))
    m = await sip_wait(sip.bob.trace.expect(lambda m: m.uri_of('from').split(';', 1)[0] == nobody, 5, mark,
                                            'the bounce notice from %s at bob' % nobody))
    check(m.uri_of('to') == BOB_SIP, 'notice To %r, expected %s' % (m.header('to'), BOB_SIP))
    mtype, _ = m.media_type()
    check(mtype == 'text/plain', 'notice Content-Type %r, expected text/plain' % m.header('content-type'))
    check(m.body.strip() and len(m.body) <= 1300, 'notice body of %d bytes, expected a short text' % len(m.body))
    check(body.encode() not in m.body, 'the notice repeats the bounced text: %r' % m.body)
    check(m.header('contact') is None, 'the notice carries Contact %r (M2)' % m.header('contact'))
    h.log('m12: notice body %r' % m.body)
    await sip_wait(sip.kamailio_log.expect(r'REPLY 200 .* ci=%s \(' % re.escape(m.call_id), 3))
    # exactly one notice for one bounce, and the gateway answered nothing back to XMPP (E4)
    await h.main.expect(r"bridge: bounce notice for id='%s': 200 " % re.escape(stanza_id), 5, start=xmark)
    notices = [x for x in sip.bob.trace.received(mark) if x.uri_of('from').split(';', 1)[0] == nobody]
    check(len(notices) == 1, '%d notices at bob for one bounce' % len(notices))


@messaging
async def m5_link_down_503(h):
    """A MESSAGE that arrives while the XMPP server is down gets 503 with Retry-After (RFC 3261
    section 21.5.4), not a 202 for a message that cannot go anywhere; the link comes back after.
    When x3_server_restart runs next, the server is left stopped for it (one outage for both:
    ejabberd takes ~3 s to start); otherwise it is started here and `link up` awaited."""
    sip = h.sip_peers()
    m = h.main
    await m.ensure_link_up()
    mark = m.mark()
    await h.server.stop()
    restart = True
    try:
        down = await m.expect(r'xmpp: link down', within=10, start=mark)
        r = await sip_sends(h, sip, GATEWAY, 'link down %s' % h.token('m5'), expect=(503,), name='m5-link-down')
        retry = r.final.header('retry-after')
        check(retry is not None and re.match(r'\d+\s*(\(.*\))?\s*(;.*)?$', retry),
              '503 without a valid Retry-After header: %r' % retry)
        m.expect_none(r'xmpp: link up', 'link up while the server was stopped', down[0])
        restart = h.upcoming[:1] != ['x3_server_restart']
    finally:
        if restart:
            await h.server.start()
    if not restart:
        h.server_down = down
        h.log('server left stopped for x3_server_restart')
        return
    await m.expect(r'xmpp: link up', within=MAIN['reconnect_max'] / 1000.0 + 10, start=down[0] + 1)


@messaging
async def s5_message_size(h):
    """S5, M4: an instance with [sip] max_message_bytes = 2000 (and its own sip.listen, 127.0.0.1:5085)
    refuses a 3000-byte XMPP body with policy-violation (same id) and a 3000-byte SIP MESSAGE over TCP
    with 413; bodies of exactly 2000 bytes pass both ways. It must be the only connection for sip.test
    (Prosody refuses a second one, jabberd2 and ejabberd spread stanzas over them): the main instance
    is stopped first (x10_sigterm has done so when it ran)."""
    sip = h.sip_peers()
    if h.main.running:
        await h.stop_instance(h.main)
    x = h.new_xsgw('limits', SECRET, sip_port=LIMITS_PORT,
                   sip_extra=['max_message_bytes = %d' % MAX_MESSAGE_BYTES], **MAIN)
    await x.start()
    await x.expect(r'xmpp: link up', within=10)
    target = '127.0.0.1:%d' % LIMITS_PORT
    for size in (MAX_MESSAGE_BYTES + 1000, MAX_MESSAGE_BYTES):
        head = 's5 %d %s ' % (size, h.token('s5'))
        body = (head + 'x' * size)[:size]
        mark = sip.bob.trace.mark()
        c, msg_id, cmark = await alice_sends(h, BOB_JID, '<body>%s</body>' % body, gw=x)
        if size > MAX_MESSAGE_BYTES:
            el = await expect_message_error(h, c, msg_id, BOB_JID, cmark, ('policy-violation',))
            check(not sip.bob.trace.received(mark), 'bob got a MESSAGE although alice got policy-violation')
            h.log('s5: %s' % error_text(el))
        else:
            m = await delivered(sip.bob.trace, lambda m: m.body.startswith(head.encode()), 10, mark,
                                'the %d-byte MESSAGE at bob' % size, c, msg_id, cmark)
            check(m.body == body.encode(), 'body of %d bytes at bob, %d sent' % (len(m.body), size))

        head = 's5 sip %d %s ' % (size, h.token('s5'))
        body = (head + 'y' * size)[:size]
        mark = c.message_mark()
        expect = (413,) if size > MAX_MESSAGE_BYTES else (202,)
        r = await sip_sends(h, sip, target, body, expect=expect, transport='t1', name='s5-%d' % size)
        check(r.final.transport == 'TCP', 'the %d went over %s, expected TCP' % (r.status, r.final.transport))
        if size == MAX_MESSAGE_BYTES:
            el = await alice_wait(c, lambda m: (body_of(m) or '').startswith(head), 5, mark,
                                  'the %d-byte message from SIP' % size)
            check(body_of(el) == body, 'body of %d bytes at alice, %d sent' % (len(body_of(el)), size))
    await h.stop_instance(x)


@messaging
async def s7_allowed_domains(h):
    """S7 (RFC 8048 section 8.1): an instance (own sip.listen, 127.0.0.1:5086) with [xmpp]
    allowed_domains = ["XMPP.test"] carries alice's (xmpp.test) message to bob; after the file says
    ["other.test"] and a SIGHUP (logged old -> new), her next message gets <forbidden/> (type auth,
    same id), bob sees no MESSAGE, the refusal is logged, and the gateway's own iq still answers her.
    The only connection for sip.test, like s5_message_size: the main instance is stopped first."""
    sip = h.sip_peers()
    if h.main.running:
        await h.stop_instance(h.main)
    x = h.new_xsgw('domains', SECRET, sip_port=DOMAINS_PORT,
                   xmpp_extra=['allowed_domains = ["XMPP.test"]'], **MAIN)
    await x.start()
    await x.expect(r'xmpp: link up', within=10)
    head = 's7 allowed %s' % h.token('s7')
    mark = sip.bob.trace.mark()
    c, msg_id, cmark = await alice_sends(h, BOB_JID, '<body>%s</body>' % head, gw=x)
    await delivered(sip.bob.trace, lambda m: m.body.startswith(head.encode()), 10, mark,
                    'the MESSAGE of an allowed domain at bob', c, msg_id, cmark)

    with open(x.config_path) as f:
        text = f.read()
    check('allowed_domains = ["XMPP.test"]' in text, 'allowed_domains not in %s' % x.config_path)
    with open(x.config_path, 'w') as f:   # the file exists with mode 0600: it stays so
        f.write(text.replace('allowed_domains = ["XMPP.test"]', 'allowed_domains = ["other.test"]'))
    xmark = x.mark()
    os.kill(x.proc.pid, signal.SIGHUP)
    await x.expect(r'xsgw: SIGHUP: xmpp\.allowed_domains \[xmpp\.test\] -> \[other\.test\]', within=5,
                   start=xmark)

    head = 's7 refused %s' % h.token('s7')
    mark = sip.bob.trace.mark()
    c, msg_id, cmark = await alice_sends(h, BOB_JID, '<body>%s</body>' % head, gw=x)
    el = await expect_message_error(h, c, msg_id, BOB_JID, cmark, ('forbidden',))
    check('xmpp.test may not use this gateway' in (error_text(el) or ''),
          'the error does not say the domain may not use the gateway: %r' % error_text(el))
    await x.expect(r"bridge: message id='%s' from alice@xmpp\.test\S* to %s refused: forbidden: "
                   r'domain xmpp\.test may not use this gateway' % (re.escape(msg_id), re.escape(BOB_JID)),
                   within=5, start=xmark)
    r = await h.iq('get', COMPONENT, "<ping xmlns='%s'/>" % NS_PING)
    check(r.get('type') == 'result', 'ping to the gateway from a refused domain: %s' % to_text(r))
    # The refusal comes before any SIP work: nothing can follow the error.
    check(not sip.bob.trace.received(mark), 'bob got a MESSAGE from a domain not in allowed_domains')
    await h.stop_instance(x)


@messaging
async def s5_per_sender(h):
    """S5 toward SIP, per sender: frank sends 70 messages to bob at once; the main instance's default
    xmpp.max_stanzas_per_sender (20 a second, burst 40) lets the first ones through and answers the rest
    with resource-constraint (type wait). The ledger balances exactly: every id either reached bob or
    got that error, none both, none neither; the burst of 40 went through and the rest was refused.
    frank, not alice: the scenarios that follow find alice's bucket full (frank's next use, p14_limits,
    comes many seconds later)."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.user('frank')
    n, tag = 70, h.token('s5p')
    mark, cmark = sip.bob.trace.mark(), c.message_mark()
    ids = ['%s-%d' % (tag, i) for i in range(n)]
    for i in ids:
        c.send_message(BOB_JID, i, '<body>%s</body>' % i)
    answered = lambda m: m.get('type') == 'error' and m.get('id') in ids

    def settled():
        got = {m.body.decode(errors='replace') for m in sip.bob.trace.received(mark)}
        errors = {m.get('id') for m in c.messages[cmark:] if answered(m)}
        return got, errors

    deadline = time.monotonic() + 20
    while True:
        got, errors = settled()
        if len(got & set(ids)) + len(errors) >= n or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    delivered = got & set(ids)
    h.log('s5_per_sender: %d delivered, %d refused of %d' % (len(delivered), len(errors), n))
    check(not delivered & errors, 'both delivered and refused: %s' % sorted(delivered & errors)[:5])
    lost = set(ids) - delivered - errors
    check(not lost, '%d of %d messages neither delivered nor refused: %s' % (len(lost), n, sorted(lost)[:5]))
    check(errors and len(delivered) >= 40, '%d delivered, %d refused: expected the burst of 40 through '
          'and some refused' % (len(delivered), len(errors)))
    for m in c.messages[cmark:]:
        if answered(m):
            check(error_condition(m) == ('wait', 'resource-constraint'),
                  'refusal %s: %s' % (m.get('id'), to_text(m)))
            check('at most 20 a second' in (error_text(m) or ''), 'refusal text %r' % error_text(m))
    await h.main.expect(r'bridge: refused \d+ stanza\(s\) from frank@xmpp\.test with resource-constraint', 5)


@messaging
async def from_domain_check(h):
    """Issue 5 part 7, who may speak for a domain: an instance with [sip] verify_from_domain = true takes
    bob@simple.test's MESSAGE relayed by Kamailio (source 127.0.0.2 = pbx.simple.test, simple.test's
    SRV target) and refuses the same From sent straight from 127.0.0.1 with 403 and the reason, which
    it logs; a From domain without SIP servers is refused too. Over TLS (from 127.0.0.1), Kamailio's
    client certificate (tls.test) speaks for tls.test, and not for simple.test, which is refused. It listens on 127.0.0.1:5080 (Kamailio
    finds sip.test there), so the main instance is stopped first, as for s5_message_size."""
    sip = h.sip_peers()
    if h.main.running:
        await h.stop_instance(h.main)
    x = h.new_xsgw('fromcheck', SECRET, sip_port=5080, sip_extra=['verify_from_domain = true'] + h.main_sip(),
                   metrics_port=METRICS_PORT, **MAIN)
    await x.start()
    await x.expect(r'xmpp: link up', within=10)
    c = await h.alice()
    body = 'relayed by its domain %s' % h.token('from')
    mark = c.message_mark()
    await sip_sends(h, sip, KAM, body, name='from-kamailio')
    el = await alice_wait(c, lambda m: body_of(m) == body, 5, mark, 'the message relayed by Kamailio')
    check(bare(el.get('from')) == BOB_JID, 'message from %r, expected %s' % (el.get('from'), BOB_JID))

    # Over TLS: Kamailio relays tlsuser's MESSAGEs to the instance's tls_listen from 127.0.0.1 (no SIP
    # server of either domain) and presents tls.test's certificate, from the CA the instance trusts. For
    # From tls.test the certificate speaks; for From simple.test it names another domain, the address
    # check decides, and refuses.
    for domain, status, proof in (
            ('tls.test', 202, r'the TLS certificate of 127\.0\.0\.1:\d+ names tls\.test'),
            ('simple.test', 403, r'the TLS certificate of 127\.0\.0\.1:\d+ does not speak for simple\.test '
                                 r'\(its certificate does not name simple\.test\); checking the address')):
        sender = 'sip:tlsuser@' + domain
        body = 'over TLS from %s %s' % (domain, h.token('from'))
        mark, xmark = c.message_mark(), x.mark()
        r = await sip.message(KAM, ALICE_SIP, sender, ALICE_SIP, 'text/plain;charset=UTF-8', body,
                              expect=(status,), name='from-tls')
        check(r.status == status, 'MESSAGE from %s over TLS: final status %s, expected %d (sipp trace %s)'
              % (sender, r.status if r.final else 'none', status, r.trace_path))
        await x.expect(r'sip: MESSAGE from %s: %s' % (re.escape(sender), proof), 5, xmark)
        if status == 202:
            el = await alice_wait(c, lambda m: body_of(m) == body, 5, mark, 'the message from %s' % sender)
            check(bare(el.get('from')) == 'tlsuser*%s@%s' % (domain, COMPONENT), 'message from %r' % el.get('from'))
        else:
            await x.expect(r'sip: MESSAGE from %s \(source 127\.0\.0\.1\) refused with 403: Source 127\.0\.0\.1 '
                           r'is not a SIP server of the From domain simple\.test' % re.escape(sender), 5, xmark)

    for sender, why in ((BOB_SIP, r'Source 127\.0\.0\.1 is not a SIP server of the From domain simple\.test '
                                  r'\(127\.0\.0\.2\)'),
                        ('sip:eve@nowhere.test', r'From domain nowhere\.test has no SIP servers')):
        body = 'straight %s' % h.token('from')
        mark, xmark = c.message_mark(), x.mark()
        r = await sip.message(GATEWAY, ALICE_SIP, sender, ALICE_SIP, 'text/plain;charset=UTF-8', body,
                              expect=(403,), name='from-direct')
        check(r.status == 403, 'MESSAGE from %s straight from 127.0.0.1: status %s, expected 403 (trace %s)'
              % (sender, r.status if r.final else 'none', r.trace_path))
        phrase = r.final.start if r.final else ''
        check(re.search(why, phrase), '403 phrase %r does not give the reason /%s/' % (phrase, why))
        await x.expect(r'sip: MESSAGE from %s \(source 127\.0\.0\.1\) refused with 403: %s'
                       % (re.escape(sender), why), 5, xmark)
        await ping_as(c)
        check(not [m for m in c.messages[mark:] if body_of(m) == body], 'alice got the refused message')
    figures = scrape_metrics()
    check(figure(figures, 'xsgw_sip_from_domain_refused_total') == 3,
          'xsgw_sip_from_domain_refused_total %s, expected 3' % figure(figures, 'xsgw_sip_from_domain_refused_total'))
    await h.stop_instance(x)


def scrape_metrics():
    """GET /metrics from the main instance: {(name, frozenset(labels)): value}."""
    import socket
    with socket.create_connection(('127.0.0.1', METRICS_PORT), timeout=5) as conn:
        conn.sendall(b'GET /metrics HTTP/1.0\r\n\r\n')
        data = b''
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.decode().partition('\r\n\r\n')
    check(head.startswith('HTTP/1.0 200'), 'GET /metrics: %r' % head.splitlines()[:1])
    figures = {}
    for line in body.splitlines():
        if not line or line.startswith('#'):
            continue
        m = re.match(r'([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        check(m, 'GET /metrics: a line that is not a sample: %r' % line)
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ''))
        figures[(m.group(1), labels)] = float(m.group(3))
    return figures


def figure(figures, name, **labels):
    return figures.get((name, frozenset(labels.items())), 0.0)


@messaging
async def metrics_scrape(h):
    """The main instance's /metrics counts exactly what this scenario does: one message each way
    delivered, one XMPP message refused with item-not-found (404 at Kamailio), one SIP MESSAGE
    refused with 415."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    before = scrape_metrics()
    check(figure(before, 'xsgw_xmpp_link_up') == 1, 'xsgw_xmpp_link_up is not 1 while the link is up')
    mark = sip.bob.trace.mark()
    c, msg_id, cmark = await alice_sends(h, BOB_JID, '<body>counted %s</body>' % h.token('metrics'))
    await delivered(sip.bob.trace, from_alice, 10, mark, 'the counted message at bob', c, msg_id, cmark)
    await no_error_for(h, c, msg_id, cmark)
    c, msg_id, cmark = await alice_sends(h, 'nobody*simple.test@' + COMPONENT, '<body>counted miss</body>')
    await expect_message_error(h, c, msg_id, 'nobody*simple.test@' + COMPONENT, cmark, ('item-not-found',))
    inbound = 'counted in %s' % h.token('metrics')
    amark = c.message_mark()
    await sip_sends(h, sip, GATEWAY, inbound, name='metrics-in')
    await alice_wait(c, lambda m: body_of(m) == inbound, 5, amark, 'the counted SIP message')
    await sip_sends(h, sip, GATEWAY, 'counted 415', ctype='application/x-unknown', expect=(415,), name='metrics-415')
    after = scrape_metrics()

    def delta(name, **labels):
        return figure(after, name, **labels) - figure(before, name, **labels)
    expected = [
        (('xsgw_messages_total', dict(direction='xmpp_to_sip', outcome='received')), 2),
        (('xsgw_messages_total', dict(direction='xmpp_to_sip', outcome='delivered')), 1),
        (('xsgw_messages_total', dict(direction='xmpp_to_sip', outcome='failed')), 1),
        (('xsgw_xmpp_errors_total', dict(condition='item-not-found')), 1),
        (('xsgw_messages_total', dict(direction='sip_to_xmpp', outcome='received')), 2),
        (('xsgw_messages_total', dict(direction='sip_to_xmpp', outcome='delivered')), 1),
        (('xsgw_messages_total', dict(direction='sip_to_xmpp', outcome='refused')), 1),
        (('xsgw_sip_refusals_total', dict(status='415')), 1),
    ]
    for (name, labels), want in expected:
        got = delta(name, **labels)
        check(got == want, '%s%s went up by %g, the scenario did %d' % (name, labels, got, want))
    check(delta('xsgw_dns_cache_hits_total') + delta('xsgw_dns_queries_total') >= 1,
          'no DNS lookup counted for simple.test')
    check(figure(after, 'xsgw_sip_queued_messages') == 0, 'MESSAGEs still queued after the scenario')

    # The same figures through the XEP-0050 "stats" command, for alice, an admin.
    ns_commands = 'http://jabber.org/protocol/commands'
    items = result_of(await h.iq('get', COMPONENT,
                                 "<query xmlns='http://jabber.org/protocol/disco#items' node='%s'/>" % ns_commands))
    nodes = [e.get('node') for e in items.iter() if local(e.tag) == 'item']
    check(nodes == ['stats'], 'ad-hoc commands listed for alice: %r, expected [stats]' % nodes)
    r = result_of(await h.iq('set', COMPONENT,
                             "<command xmlns='%s' node='stats' action='execute'/>" % ns_commands))
    command = [e for e in r if local(e.tag) == 'command']
    check(command and command[0].get('status') == 'completed', 'stats command not completed: %s' % to_text(r))
    fields = {}
    for e in r.iter():
        if local(e.tag) == 'field':
            values = [v.text for v in e if local(v.tag) == 'value']
            fields[e.get('var')] = float(values[0]) if values else None
    key = 'xsgw_messages_total.direction=sip_to_xmpp.outcome=received'
    check(fields.get(key) == figure(after, 'xsgw_messages_total', direction='sip_to_xmpp', outcome='received'),
          'ad-hoc %s = %r, /metrics says %g' % (key, fields.get(key),
                                                  figure(after, 'xsgw_messages_total', direction='sip_to_xmpp', outcome='received')))
    key = 'xsgw_sip_refusals_total.status=415'
    check(fields.get(key) == figure(after, 'xsgw_sip_refusals_total', status='415'),
          'ad-hoc %s = %r, /metrics says %g' % (key, fields.get(key), figure(after, 'xsgw_sip_refusals_total', status='415')))


# ---------------------------------------------------------------------------------------------
# presence scenarios (P of STANDARDS.md): XMPP users watch SIP presentities held by Kamailio's presence
# server (baresip and sipp PUBLISH there), SIP watchers (sipp UACs, baresip) watch XMPP users through the
# gateway, and the gateway PUBLISHes XMPP users' presence to Kamailio (P13).

NS_PIDF = 'urn:ietf:params:xml:ns:pidf'
NS_RPID = 'urn:ietf:params:xml:ns:pidf:rpid'
NS_DM = 'urn:ietf:params:xml:ns:pidf:data-model'
XML_LANG = '{http://www.w3.org/XML/1998/namespace}lang'
CAROL_SIP = 'sip:carol@simple.test'           # baresip, PUBLISHing at Kamailio (p1_..., p6_...)
CAROL_JID = 'carol*simple.test@' + COMPONENT
CAROL_BARESIP = ('carol', 'carol', 5092, 4444)   # name, user, SIP port (udp+tcp; tls on the next), ctrl_tcp port
HENRY_BARESIP = ('henry', 'henry', 5094, 4445)   # baresip watching alice through Kamailio
HENRY_JID = 'henry*simple.test@' + COMPONENT
REFUSER_UAS = ('127.0.0.6', 5060)   # refuse.test's SRV target: a sipp UAS refusing every SUBSCRIBE
FORGETFUL_UAS = ('127.0.0.8', 5060)    # forgetful.test's SRV target: a sipp presentity answering refreshes 481
PRESENTITY_UAS = ('127.0.0.7', 5060)   # presentity.test's SRV target: a sipp presentity (pending, then active)
WATCH_HERE_IP = '127.0.0.5'         # a watcher bound here SUBSCRIBEs at Kamailio's presence server (P13)
# Servers that drop an `unsubscribed` from a contact whose subscription request is still pending, instead of
# passing it to the user (RFC 6121 section 3.2.3): jabberd2 2.7's mod_roster (_roster_pkt_user) takes an
# `unsubscribed` for an item without subscription "to" as a bogus answer and drops it.
DROPS_DENIAL_OF_PENDING = {'jabberd2'}


def presence(scenario):
    """Mark a scenario as needing the gateway's presence and the SIP peers (--group presence)."""
    scenario.group = 'presence'
    return scenario


def sip_jid(aor):
    """The JID an XMPP user sees for a SIP AOR: sip:bob@simple.test -> bob*simple.test@sip.test."""
    user, _, domain = aor[4:].partition('@')
    return '%s*%s@%s' % (user, domain, COMPONENT)


def resource(jid):
    return (jid or '').partition('/')[2]


def ptype(el):
    return el.get('type') or 'available'


def show_of(el):
    e = stanza_child(el, 'show')
    return None if e is None else (e.text or '').strip()


def status_of(el):
    e = stanza_child(el, 'status')
    return None if e is None else (e.text or '')


def is_presence(jid, kind):
    """A predicate: a presence stanza of type `kind` ('available' for none) from the bare JID `jid`."""
    return lambda el: bare(el.get('from')) == jid and ptype(el) == kind


async def presence_wait(c, pred, within, start, what):
    try:
        el = await c.expect_presence(pred, within, start, what)
    except ClientError as e:
        raise Fail('%s: %s' % (c.boundjid.bare, e)) from None
    return el


def presences_from(c, jid, start=0):
    return [el for el in c.presences[start:] if bare(el.get('from')) == jid]


async def subscribe_to(h, c, jid, within=10.0):
    """c subscribes to the gateway contact jid and gets `subscribed`; returns the presence mark from
    before the subscribe (an earlier subscription is confirmed again by the gateway)."""
    mark = c.presence_mark()
    h.log('%s: subscribe to %s' % (c.boundjid.bare, jid))
    c.send_presence_raw("to='%s' type='subscribe'" % jid)
    await presence_wait(c, is_presence(jid, 'subscribed'), within, mark, '`subscribed` from %s' % jid)
    return mark


def tuple_id(resource):
    """The PIDF tuple id xsgw writes for a resource (P10; include/xsgw/translate/presence.hpp): ID- and
    the resource with every byte but ASCII letters, digits, '-' and '.' written _HH."""
    keep = set(b'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.')
    return 'ID-' + ''.join(chr(b) if b in keep else '_%02X' % b for b in resource.encode('utf-8'))


async def gateway_sent(h, frm, to, kind, within, start, gw=None):
    """The line in which the gateway (default: the main instance) logged sending
    <presence from=frm to=to type=kind/> (debug level, '>> ')."""
    rx = r">> <presence(?=[^>]*\bfrom='%s')(?=[^>]*\bto='%s')(?=[^>]*\btype='%s')" % (
        re.escape(frm), re.escape(to), re.escape(kind))
    return await (gw or h.main).expect(rx, within, start=start)


async def ping_as(c):
    """A ping from c to the gateway, answered: every stanza the gateway sent c before answering is in
    c's lists now (one component link, one c2s stream, both in order)."""
    try:
        r = await c.iq('get', COMPONENT, "<ping xmlns='%s'/>" % NS_PING, within=5)
    except ClientError as e:
        raise Fail('%s: %s' % (c.boundjid.bare, e)) from None
    check(r.get('type') == 'result', 'ping as %s: %s' % (c.boundjid.bare, to_text(r)))


async def set_presence(h, c, payload='', attrs=''):
    h.log('%s: send presence %s %s' % (c.boundjid.bare, attrs, payload))
    c.send_presence_raw(attrs, payload)


def pidf_doc(entity, tuple_id, basic, note=None, lang=None, activity=None):
    """A PIDF body as a SIP client publishes it: one tuple, its note, an RPID activity in a person."""
    lang_attr = ' xml:lang="%s"' % lang if lang else ''
    note_el = '<note%s>%s</note>' % (lang_attr, escape(note)) if note is not None else ''
    person = ('<dm:person id="p1"><rpid:activities><rpid:%s/></rpid:activities></dm:person>' % activity
              if activity else '')
    return ('<?xml version="1.0" encoding="UTF-8"?>\r\n'
            '<presence xmlns="%s" xmlns:dm="%s" xmlns:rpid="%s" entity="%s">'
            '<tuple id="%s"><status><basic>%s</basic></status>%s</tuple>%s</presence>'
            % (NS_PIDF, NS_DM, NS_RPID, entity, tuple_id, basic, note_el, person))


async def sip_publish(h, sip, aor, body, expires=60, name='publish'):
    """sipp PUBLISHes body for aor at Kamailio (a new publication); returns its SIP-ETag."""
    r = await sip.uac('uac_publish.xml', KAM, (200,), name=name, aor=aor, expires=str(expires), body=body)
    check(r.status == 200, 'PUBLISH %s at Kamailio: status %s (trace %s)' % (aor, r.status, r.trace_path))
    etag = r.final.header('sip-etag')
    check(etag, 'Kamailio\'s 200 to PUBLISH carries no SIP-ETag (trace %s)' % r.trace_path)
    return etag


async def sip_unpublish(h, sip, aor, etag, name='unpublish'):
    r = await sip.uac('uac_unpublish.xml', KAM, (200,), name=name, aor=aor, etag=etag)
    check(r.status == 200, 'PUBLISH Expires: 0 %s at Kamailio: status %s (trace %s)' % (aor, r.status, r.trace_path))


class Pidf:
    """What a PIDF document says (RFC 3863, RPID RFC 4480), read leniently, for the checks."""

    def __init__(self, body):
        try:
            self.root = ET.fromstring(body)
        except ET.ParseError as e:
            raise Fail('not XML (%s): %r' % (e, body[:300])) from None
        check(self.root.tag == '{%s}presence' % NS_PIDF, 'root %s, expected {%s}presence' % (self.root.tag, NS_PIDF))
        self.entity = self.root.get('entity')
        self.tuples = []
        for t in self.root.findall('{%s}tuple' % NS_PIDF):
            st = t.find('{%s}status' % NS_PIDF)
            basic = st.find('{%s}basic' % NS_PIDF) if st is not None else None
            note = t.find('{%s}note' % NS_PIDF)
            contact = t.find('{%s}contact' % NS_PIDF)
            shows = [e for e in t.iter() if local(e.tag) == 'show']
            self.tuples.append(dict(
                id=t.get('id'), basic=(basic.text or '').strip() if basic is not None else None,
                note=None if note is None else note.text, lang=None if note is None else note.get(XML_LANG),
                show=[(ns(e.tag), (e.text or '').strip()) for e in shows],
                priority=None if contact is None else contact.get('priority')))
        self.activities = sorted({local(e.tag) for a in self.root.iter('{%s}activities' % NS_RPID) for e in a})

    def open_tuples(self):
        return [t for t in self.tuples if t['basic'] == 'open']


def notify_state(m):
    """(state, {param: value}) of a NOTIFY's Subscription-State header."""
    v = m.header('subscription-state') or ''
    parts = [p.strip() for p in v.split(';')]
    params = dict((k.strip().lower(), val.strip()) for k, _, val in (p.partition('=') for p in parts[1:]))
    return parts[0].lower(), params


def is_notify(m):
    return m.direction == 'received' and m.method == 'NOTIFY'


def is_response(status, cseq_method, cseq_no=None):
    def pred(m):
        if m.direction != 'received' or m.status is None:
            return False
        num, _, meth = (m.header('cseq') or '').partition(' ')
        return (m.status in status and meth.strip() == cseq_method
                and (cseq_no is None or num.strip() == str(cseq_no)))
    return pred


def gateway_pidf(m, what):
    """The PIDF of a NOTIFY from the gateway: Content-Type application/pidf+xml and a readable body."""
    check(m.media_type()[0] == 'application/pidf+xml', '%s: Content-Type %r, expected application/pidf+xml: %s'
          % (what, m.header('content-type'), m.summary()))
    try:
        return Pidf(m.body)
    except Fail as e:
        raise Fail('%s: PIDF %s' % (what, e)) from None


def watcher_jid(from_uri):
    return sip_jid(from_uri)


async def watcher_start(h, sip, user, ruri=ALICE_SIP, target=GATEWAY, expires=60, go=None, end=None,
                        local_ip='127.0.0.1', name='watcher', within=20):
    """A sipp watcher sip:user@simple.test of ruri (sipp/uac_subscribe.xml) in the background; go / end:
    the status texts that make it refresh / end its subscription (default: tokens never sent)."""
    go = go or h.token('never-go')
    end = end or h.token('never-end')
    # -aa: a NOTIFY that arrives while sipp is between two sends of its own (a second NOTIFY right
    # after the one it acts on) is answered 200 instead of aborting the run; it is in the trace all the same
    return await sip.uac_start('uac_subscribe.xml', target, name=name, within=within, local_ip=local_ip,
                               replace={'@GO@': go, '@END@': end}, extra=['-aa'], ruri=ruri,
                               **{'from': 'sip:%s@simple.test' % user}, expires=str(expires))


async def trace_wait(run, pred, within, start, what):
    """A message in a background sipp's trace; fails at once if that sipp ended without it."""
    def ended():
        if run.running:
            return None
        # one last look: the message may have been written just before the exit
        if any(pred(m) for m in run.trace.messages()[start:]):
            return None
        return 'sipp %s ended (status %s; see %s)' % (run.name, run.rc(), run.out_path)
    return await sip_wait(run.trace.expect_msg(pred, within, start, what, abort=ended))


async def watcher_subscribed(h, run, c, wjid, what):
    """The watcher's SUBSCRIBE got 202 (P8, or 200), then NOTIFY pending without a body, and the XMPP
    user c got <presence type='subscribe'/> from wjid. Returns the index after that NOTIFY."""
    i, r = await trace_wait(run, is_response((200, 202), 'SUBSCRIBE', 1), 5, 0, '%s: the answer to SUBSCRIBE' % what)
    check(r.status == 202, '%s: SUBSCRIBE answered %d, expected 202 Accepted (P8; the XMPP user has not '
          'approved yet)' % (what, r.status))
    problem = r.reason_problem()
    check(problem is None, '%s: the %d is malformed: %s' % (what, r.status, problem))
    exp = r.header('expires')
    check(exp is not None and exp.isdigit(), '%s: the 202 has no Expires (RFC 6665 section 4.2.1.1): %r' % (what, exp))
    i, n = await trace_wait(run, is_notify, 5, i + 1, '%s: the first NOTIFY' % what)
    state, _ = notify_state(n)
    check(state == 'pending', '%s: first NOTIFY %r, expected Subscription-State pending (P8)' % (what, n.header('subscription-state')))
    check(not n.body, '%s: the pending NOTIFY has a %d-byte body, expected none (P8): %r' % (what, len(n.body), n.body[:200]))
    check((n.header('event') or '').split(';')[0].strip() == 'presence', '%s: NOTIFY Event %r' % (what, n.header('event')))
    await presence_wait(c, is_presence(wjid, 'subscribe'), 5, 0, '%s: <presence type=subscribe> from %s' % (what, wjid))
    return i + 1


@presence
async def p1_p2_p3_p11_xmpp_watches_sip(h):
    """alice watches carol@simple.test, whose presence Kamailio's presence server holds: the SUBSCRIBE the
    gateway sends there carries Event: presence, Accept: application/pidf+xml, Expires: 600 (P1, [presence]
    subscribe_expires); alice gets `subscribed`, then unavailable for the first NOTIFY, which has no body
    (P2, P3); baresip as carol goes online (open: available) and offline (closed: unavailable, P3).
    baresip 1.0 publishes only open/closed, so away with a status text comes from a sipp PUBLISH for the
    same AOR with RPID <rpid:away/> and a <note xml:lang>: alice gets show away and that status from
    carol's JID with the tuple id as resource (P11); removing that publication makes it unavailable."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    kmark = sip.kamailio_log.mark()
    mark = await subscribe_to(h, c, CAROL_JID)
    una = await presence_wait(c, is_presence(CAROL_JID, 'unavailable'), 5, mark,
                              'unavailable from %s (first NOTIFY, no publication yet)' % CAROL_JID)
    got = presences_from(c, CAROL_JID, mark)
    check([ptype(x) for x in got][:2] == ['subscribed', 'unavailable'],
          'alice got %s from carol, expected subscribed then unavailable (P2, P3)' % [ptype(x) for x in got])
    h.log('p1: %s' % to_text(una))

    # P1: what Kamailio received
    line = await sip_wait(sip.kamailio_log.expect(
        r'REQ SUBSCRIBE sip:carol@simple\.test from %s \(src 127\.0\.0\.1:5080/\w+\) ci=(\S+)' % re.escape(ALICE_SIP),
        3, kmark))
    ci = re.search(r' ci=(\S+)', line).group(1)
    h.state['carol_ci'] = ci
    hdr = await sip_wait(sip.kamailio_log.expect(r'HDR SUBSCRIBE .* ci=%s ' % re.escape(ci), 3, kmark))
    fields = dict(re.findall(r'(\w[\w-]*)=\[([^\]]*)\]', hdr))
    check(fields.get('event') == 'presence', 'SUBSCRIBE Event %r, expected presence (P1): %s' % (fields.get('event'), hdr))
    check('application/pidf+xml' in fields.get('accept', ''), 'SUBSCRIBE Accept %r, expected application/pidf+xml (P1)'
          % fields.get('accept'))
    check(fields.get('expires') == '600', 'SUBSCRIBE Expires %r, expected 600 ([presence] subscribe_expires, P1)'
          % fields.get('expires'))

    # baresip as carol: it PUBLISHes open when it starts
    mark = c.presence_mark()
    carol = await sip_wait(sip.baresip(*CAROL_BARESIP))
    av = await presence_wait(c, is_presence(CAROL_JID, 'available'), 5, mark, 'available from %s (baresip online)' % CAROL_JID)
    h.log('p1: %s' % to_text(av))
    check(resource(av.get('from')), 'available from %r: no resource (the tuple id, P11)' % av.get('from'))
    check(show_of(av) is None, 'baresip published plain open, alice got <show>%s</show>' % show_of(av))
    mark = c.presence_mark()
    await sip_wait(carol.command('presence_offline'))
    off = await presence_wait(c, is_presence(CAROL_JID, 'unavailable'), 5, mark, 'unavailable from %s (baresip offline)' % CAROL_JID)
    h.log('p1: %s' % to_text(off))

    # away + status text: sipp publishes for carol too (a second publication of the same AOR)
    tuple_id = 'sipp-%d' % os.getpid()
    note = 'away ✓ %s' % h.token('p11')
    mark = c.presence_mark()
    etag = await sip_publish(h, sip, CAROL_SIP, pidf_doc(CAROL_SIP, tuple_id, 'open', note, 'en', 'away'),
                             name='p1-publish-away')
    away = await presence_wait(c, lambda x: is_presence(CAROL_JID, 'available')(x) and status_of(x) == note, 5, mark,
                               'available from %s with status %r' % (CAROL_JID, note))
    h.log('p1: %s' % to_text(away))
    # Kamailio aggregates the publications of carol (baresip's, with an empty <rpid:activities/>, and
    # sipp's) into one document with two <dm:person> elements, the older publication's first.
    h.expect_soft(show_of(away) == 'away', 'RPID <rpid:away/> became <show>%s</show>, expected away (P11; the '
                  'NOTIFY holds baresip\'s person with an empty <rpid:activities/> and sipp\'s with <rpid:away/>, '
                  'see LOCAL NOTIFY in %s)' % (show_of(away), sip.kamailio_log.path))
    check(resource(away.get('from')) == tuple_id, 'presence from %r: resource %r, expected the tuple id %r (P11)'
          % (away.get('from'), resource(away.get('from')), tuple_id))
    st = stanza_child(away, 'status')
    check(st.get(XML_LANG) in (None, 'en'), 'status xml:lang %r, the note said en' % st.get(XML_LANG))
    mark = c.presence_mark()
    await sip_unpublish(h, sip, CAROL_SIP, etag, name='p1-unpublish')
    gone = await presence_wait(c, is_presence(CAROL_JID, 'unavailable'), 5, mark,
                               'unavailable from %s once the away publication is removed' % CAROL_JID)
    check(resource(gone.get('from')) in ('', tuple_id), 'unavailable from %r: not the resource that went away (%s)'
          % (gone.get('from'), tuple_id))


def trace_time(m):
    """A sipp trace record's time stamp ('2026-11-25 16:00:17.348936') in seconds."""
    import datetime
    return datetime.datetime.strptime(m.when, '%Y-%m-%d %H:%M:%S.%f').timestamp()


async def watch_presentity(h, name, addr, scenario, domain, prefix, note, what):
    """alice subscribes to PREFIX-pid at `domain`, served by a sipp presentity of its own
    (sipp/<scenario> on addr, started on first use), and waits until the contact is available with
    `note`, the note of `what`. Returns (alice, the UAS, the contact's JID, the
    UAS trace's mark from before the SUBSCRIBE, alice's presence mark from before it)."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    uas = await sip_wait(sip.uas(name, *addr, scenario))
    jid = '%s-%d*%s@%s' % (prefix, os.getpid(), domain, COMPONENT)
    tmark = uas.trace.mark()
    mark = await subscribe_to(h, c, jid)
    await presence_wait(c, lambda x: is_presence(jid, 'available')(x) and status_of(x) == note, 5, mark,
                        'available from %s with the note of %s' % (jid, what))
    return c, uas, jid, tmark, mark


@presence
async def p2_p5_pending_then_active(h):
    """A presentity of its own (a sipp UAS at presentity.test) answers alice's SUBSCRIBE 202, NOTIFYs
    pending without a body (the gateway answers 200 and tells alice nothing: P2), then active with
    expires=6 and an open PIDF: alice gets `subscribed`, then available with its note. The gateway
    refreshes before those 6 s run out (P5: the NOTIFY's expires= rules, not the 202's 600; Sofia's nua
    refreshes at a random whole second in the interval's middle, on a 1 s tick, so an expires= under ~5 s
    may be refreshed late: a documented limit, hence 6); when alice unsubscribes, the presentity gets one
    SUBSCRIBE Expires: 0 in the same dialog and its final NOTIFY is answered 200."""
    c, uas, jid, tmark, mark = await watch_presentity(h, 'presentity', PRESENTITY_UAS, 'uas_presentity.xml',
                                                      'presentity.test', 'pend', 'pending then open', 'the active NOTIFY')
    kinds = [ptype(x) for x in presences_from(c, jid, mark)]
    check(kinds[:2] == ['subscribed', 'available'], 'alice got %s from %s, expected subscribed then available: '
          'nothing for the pending NOTIFY (P2)' % (kinds, jid))

    def sent_notify(state):
        return lambda m: m.direction == 'sent' and m.method == 'NOTIFY' and notify_state(m)[0] == state
    i, pending = await sip_wait(uas.trace.expect_msg(sent_notify('pending'), 3, tmark, 'the pending NOTIFY'))
    i, ok = await sip_wait(uas.trace.expect_msg(is_response((200,), 'NOTIFY'), 3, i, 'the 200 for the pending NOTIFY'))
    i, active = await sip_wait(uas.trace.expect_msg(sent_notify('active'), 3, i, 'the active NOTIFY'))
    i, refresh = await sip_wait(uas.trace.expect_msg(
        lambda m: m.direction == 'received' and m.method == 'SUBSCRIBE', 10, i, 'a refresh after NOTIFY active;expires=6 (P5)'))
    took = trace_time(refresh) - trace_time(active)
    h.log('p5: refresh %.2fs after NOTIFY active;expires=6' % took)
    h.expect_soft(took < 6.0, 'the refresh came %.2fs after NOTIFY active;expires=6, after the subscription ran out '
                  '(P5: refresh before expiry, honouring the NOTIFY\'s expires=; see %s)' % (took, uas.trace.path))
    check(refresh.header('to') and 'tag=' in refresh.header('to'), 'the refresh is not in the dialog: To %r' % refresh.header('to'))
    check(refresh.header('expires') not in (None, '0'), 'the refresh has Expires %r' % refresh.header('expires'))

    mark = c.presence_mark()
    c.send_presence_raw("to='%s' type='unsubscribe'" % jid)
    i, unsub = await sip_wait(uas.trace.expect_msg(
        lambda m: m.direction == 'received' and m.method == 'SUBSCRIBE' and m.header('expires') == '0', 5, i,
        'SUBSCRIBE Expires: 0 after alice unsubscribed (P6)'))
    check(unsub.call_id == refresh.call_id, 'SUBSCRIBE Expires: 0 in another dialog (%s) than the subscription (%s)'
          % (unsub.call_id, refresh.call_id))
    j, final = await sip_wait(uas.trace.expect_msg(is_response((200, 481), 'NOTIFY'), 3, i,
                                                  'the answer to the final NOTIFY'))
    unsubs = {m.header('cseq') for m in uas.trace.messages()[i:j]
              if m.direction == 'received' and m.method == 'SUBSCRIBE'}
    unsubs.add(unsub.header('cseq'))
    h.expect_soft(len(unsubs) == 1, 'the gateway sent %d SUBSCRIBE Expires: 0 (CSeq %s) in the dialog before the '
                  'final NOTIFY, expected one (RFC 6665 section 4.1.2.3: then wait for the NOTIFY; see %s)'
                  % (len(unsubs), ', '.join(sorted(unsubs)), uas.trace.path))
    h.expect_soft(final.status == 200, 'the final NOTIFY after the unsubscription got %d, expected 200' % final.status)
    await gateway_sent(h, jid, 'alice@' + XMPP_DOMAIN, 'unsubscribed', 3, 0)


@presence
async def p1_481_new_dialog(h):
    """P1: a presentity that answers the gateway's refresh 481 (sipp/uas_presentity_481.xml at
    forgetful.test) is subscribed to again at once in a new dialog (new Call-ID, no To tag), and alice,
    who never asked for anything, sees the contact available again with the new dialog's NOTIFY and
    never gets `unsubscribed`. S4: the SUBSCRIBE over UDP carries the plain sip: Contact although the
    gateway also listens for TLS."""
    c, uas, jid, tmark, mark = await watch_presentity(h, 'forgetful', FORGETFUL_UAS, 'uas_presentity_481.xml',
                                                      'forgetful.test', 'forget', 'before the 481', 'the first dialog')
    seen = c.presence_mark()  # what follows the first dialog's presence
    received = lambda m: m.direction == 'received' and m.method == 'SUBSCRIBE'
    i, first = await sip_wait(uas.trace.expect_msg(received, 3, tmark, 'the first SUBSCRIBE'))
    # S4: the gateway also listens for TLS; a dialog made over UDP gets its plain Contact
    check(first.header('contact') == '<sip:127.0.0.1:5080>',
          'SUBSCRIBE over UDP with Contact %r, expected <sip:127.0.0.1:5080>' % first.header('contact'))
    i, refresh = await sip_wait(uas.trace.expect_msg(
        lambda m: received(m) and m.call_id == first.call_id, 10, i + 1, 'the refresh in the first dialog'))
    i, answer = await sip_wait(uas.trace.expect_msg(
        lambda m: m.direction == 'sent' and m.status == 481 and m.call_id == first.call_id, 3, i,
        'the 481 to the refresh'))
    i, again = await sip_wait(uas.trace.expect_msg(
        lambda m: received(m) and m.call_id != first.call_id, 5, i, 'a SUBSCRIBE in a new dialog after the 481'))
    check('tag=' not in (again.header('to') or ''), 'the new SUBSCRIBE carries a To tag: %r' % again.header('to'))
    check(again.header('expires') not in (None, '0'), 'the new SUBSCRIBE has Expires %r' % again.header('expires'))
    await presence_wait(c, lambda x: is_presence(jid, 'available')(x), 5, seen,
                        'available from %s again, from the new dialog' % jid)
    kinds = [ptype(x) for x in presences_from(c, jid, mark)]
    check('unsubscribed' not in kinds, 'alice got unsubscribed from %s after a 481: %s' % (jid, kinds))
    c.send_presence_raw("to='%s' type='unsubscribe'" % jid)
    await gateway_sent(h, jid, 'alice@' + XMPP_DOMAIN, 'unsubscribed', 5, 0)


@presence
async def p8_p9_p10_sip_watches_xmpp(h):
    """A sipp watcher SUBSCRIBEs straight to the gateway for alice: 202 and NOTIFY pending without a body;
    alice gets <presence type='subscribe'/> from its JID and approves; NOTIFY active with a PIDF of her
    presence: basic open, tuple ID-<resource>, note = status with xml:lang, <show xmlns='jabber:client'>,
    RPID away for show away (P8, P10); she changes presence (dnd: RPID busy): a new NOTIFY; the watcher
    refreshes: 200 and a NOTIFY with the current state; Expires: 0: 200 and NOTIFY terminated;reason=timeout
    with a closed PIDF, and alice gets unavailable from the watcher (P9)."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    user = 'w1-%d' % os.getpid()
    wjid = sip_jid('sip:%s@simple.test' % user)
    s1, go, end = 'first ✓ %s' % h.token('p10'), h.token('go'), h.token('end')
    await set_presence(h, c, "<show>away</show><status xml:lang='en'>%s</status><priority>5</priority>" % escape(s1))
    mark = c.presence_mark()
    run = await watcher_start(h, sip, user, go=go, end=end, name='p8-watcher')
    i = await watcher_subscribed(h, run, c, wjid, 'p8 watcher')
    await set_presence(h, c, attrs="to='%s' type='subscribed'" % wjid)

    # P8, P10: active, with alice's presence (an active NOTIFY with nothing open may come first)
    def open_active(m):
        return is_notify(m) and notify_state(m)[0] == 'active' and b'<basic>open' in m.body
    i, n = await trace_wait(run, open_active, 5, i, 'NOTIFY active with an open PIDF after alice approved')
    doc = gateway_pidf(n, 'the active NOTIFY')
    check(doc.entity == ALICE_SIP, 'PIDF entity %r, expected %s' % (doc.entity, ALICE_SIP))
    res = c.boundjid.resource
    tuples = [t for t in doc.tuples if t['id'] == tuple_id(res)]
    check(len(doc.tuples) == 1 and tuples, 'PIDF tuples %s, expected one with id %s for resource %r (P10)'
          % (doc.tuples, tuple_id(res), res))
    t = tuples[0]
    check(t['basic'] == 'open', 'basic %r, expected open' % t['basic'])
    check(t['note'] == s1, 'note %r, expected the status %r (P10)' % (t['note'], s1))
    h.expect_soft(t['lang'] == 'en', 'note xml:lang %r, the status had xml:lang=\'en\' (P10: xml:lang kept)' % t['lang'])
    h.expect_soft(('jabber:client', 'away') in t['show'],
                  'no <show xmlns="jabber:client">away</show> in the tuple: %s (P10)' % t['show'])
    h.expect_soft(doc.activities == ['away'], 'RPID activities %s, expected [away] for show away (P10)' % doc.activities)
    h.expect_soft(t['priority'] is not None and 0 <= float(t['priority']) <= 1,
                  'contact priority %r for XMPP priority 5, expected a value in 0..1 (P10)' % t['priority'])

    # alice changes presence: a new NOTIFY (and the watcher refreshes on seeing `go`)
    await set_presence(h, c, '<show>dnd</show><status>%s</status>' % go)
    i, n = await trace_wait(run, lambda m: is_notify(m) and go.encode() in m.body, 5, i, 'a NOTIFY with status %r' % go)
    doc = gateway_pidf(n, 'the NOTIFY after alice changed')
    check(notify_state(n)[0] == 'active', 'NOTIFY %r, expected active' % n.header('subscription-state'))
    h.expect_soft(doc.activities == ['busy'], 'RPID activities %s, expected [busy] for show dnd (P10)' % doc.activities)
    h.expect_soft(('jabber:client', 'dnd') in doc.tuples[0]['show'], '<show> %s, expected dnd' % doc.tuples[0]['show'])

    # P9: refresh -> 200, then a NOTIFY with the current state
    i, r = await trace_wait(run, is_response((200, 202), 'SUBSCRIBE', 2), 5, i, 'the answer to the refresh')
    check(r.status == 200, 'refresh answered %d, expected 200' % r.status)
    i, n = await trace_wait(run, is_notify, 5, i, 'a NOTIFY after the refresh (P9)')
    check(notify_state(n)[0] == 'active' and go.encode() in n.body,
          'NOTIFY after the refresh: %r, body %r; expected active with the current state (%s)'
          % (n.header('subscription-state'), n.body[:300], go))

    # P9: Expires: 0 -> terminated;reason=timeout, closed PIDF; alice hears unavailable from the watcher
    mark = c.presence_mark()
    await set_presence(h, c, '<status>%s</status>' % end)
    i, r = await trace_wait(run, is_response((200, 202), 'SUBSCRIBE', 3), 5, i, 'the answer to Expires: 0')
    check(r.status == 200, 'SUBSCRIBE Expires: 0 answered %d, expected 200' % r.status)
    i, n = await trace_wait(run, lambda m: is_notify(m) and notify_state(m)[0] == 'terminated', 5, i,
                            'NOTIFY terminated after Expires: 0')
    state, params = notify_state(n)
    check(params.get('reason') == 'timeout', 'final NOTIFY %r, expected terminated;reason=timeout (P9)'
          % n.header('subscription-state'))
    doc = gateway_pidf(n, 'the final NOTIFY')
    check(doc.tuples and not doc.open_tuples(), 'the final NOTIFY after Expires: 0 has %s, expected closed (P9, F2)' % doc.tuples)
    await presence_wait(c, is_presence(wjid, 'unavailable'), 5, mark, 'unavailable from %s (P9)' % wjid)
    res = await run.wait()
    check(res.rc == 0, 'sipp watcher exited %d (see %s)' % (res.rc, res.out_path))


@presence
async def p9_watcher_expiry(h):
    """A watcher SUBSCRIBEs with Expires: 4 ([presence] min_expires = 2), alice approves, the watcher
    never refreshes: NOTIFY terminated;reason=timeout with a closed PIDF, and alice gets unavailable from
    it (P9)."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    user = 'w2-%d' % os.getpid()
    wjid = sip_jid('sip:%s@simple.test' % user)
    t0 = time.monotonic()
    run = await watcher_start(h, sip, user, expires=4, name='p9-expiry', within=15)
    i = await watcher_subscribed(h, run, c, wjid, 'p9 watcher')
    r = [m for m in run.trace.messages() if is_response((200, 202), 'SUBSCRIBE', 1)(m)][0]
    check(r.header('expires') == '4', 'granted Expires %r, expected the 4 asked for' % r.header('expires'))
    mark = c.presence_mark()
    await set_presence(h, c, attrs="to='%s' type='subscribed'" % wjid)
    i, n = await trace_wait(run, lambda m: is_notify(m) and notify_state(m)[0] == 'active', 5, i, 'NOTIFY active')
    i, n = await trace_wait(run, lambda m: is_notify(m) and notify_state(m)[0] == 'terminated', 8, i,
                            'NOTIFY terminated when the 4 s run out')
    took = time.monotonic() - t0
    h.log('p9: terminated %.1fs after the SUBSCRIBE' % took)
    check(took <= 6, 'the subscription of 4 s ended after %.1fs' % took)
    state, params = notify_state(n)
    check(params.get('reason') == 'timeout', 'final NOTIFY %r, expected terminated;reason=timeout (P9)'
          % n.header('subscription-state'))
    doc = gateway_pidf(n, 'the final NOTIFY')
    h.expect_soft(doc.tuples and not doc.open_tuples(), 'the final NOTIFY\'s PIDF is not closed: %s (P9)' % doc.tuples)
    await presence_wait(c, is_presence(wjid, 'unavailable'), 5, mark, 'unavailable from %s (P9)' % wjid)
    res = await run.wait()
    check(res.rc == 0, 'sipp watcher exited %d (see %s)' % (res.rc, res.out_path))


async def henry_watches_alice(h, sip, c):
    """baresip henry watching alice, approved, and showing her Online: started (and approved) on first
    use. Returns the Baresip."""
    if any(b.name == HENRY_BARESIP[0] for b in sip.baresips):
        return await sip_wait(sip.baresip(*HENRY_BARESIP, watched=[ALICE_SIP[4:]]))
    mark = c.presence_mark()
    henry = await sip_wait(sip.baresip(*HENRY_BARESIP, watched=[ALICE_SIP[4:]]))
    await presence_wait(c, is_presence(HENRY_JID, 'subscribe'), 10, mark, '<presence type=subscribe> from %s' % HENRY_JID)
    await set_presence(h, c, attrs="to='%s' type='subscribed'" % HENRY_JID)
    await sip_wait(henry.expect_contact_status(ALICE_SIP[4:], 'Online', 5))
    return henry


@presence
async def p8_p10_baresip_watches_xmpp(h):
    """baresip as henry@simple.test watches alice (contacts: <sip:alice*xmpp.test@sip.test>;presence=p2p):
    its SUBSCRIBE goes through Kamailio, which finds sip.test by NAPTR/SRV; alice gets the subscribe from
    henry's JID and approves; baresip shows her Online. baresip 1.0 knows Unknown, Online, Offline and
    Busy only, and reads the PIDF with regular expressions: <basic>open</basic> is Online, then a literal
    <rpid:away/> makes it Offline and <rpid:busy/> Busy. So alice's show away must make baresip show
    Offline (while <basic> stays open: only <rpid:away/> can do that), dnd Busy, and plain available
    Online again: the gateway's RPID prefix is the one baresip looks for."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    await set_presence(h, c, '<status>%s</status>' % h.token('p8-online'))
    kmark = sip.kamailio_log.mark()
    henry = await henry_watches_alice(h, sip, c)
    check(sip.kamailio_log.grep(r'SEND SUBSCRIBE %s to 127\.0\.0\.1:5080/' % re.escape(ALICE_SIP), kmark),
          'Kamailio did not relay henry\'s SUBSCRIBE to the gateway (%s)' % sip.kamailio_log.path)
    aor = ALICE_SIP[4:]
    for show, shown in (('away', 'Offline'), ('dnd', 'Busy'), (None, 'Online')):
        await set_presence(h, c, ('<show>%s</show>' % show if show else '') + '<status>%s</status>' % h.token('p8'))
        try:
            await henry.expect_contact_status(aor, shown, 5)
        except SipError as e:
            h.expect_soft(False, 'alice %s: %s' % ('<show>%s</show>' % show if show else 'available', e))


@presence
async def p4_p8_rejection(h):
    """P4: a presentity that answers the SUBSCRIBE 403, 603 or 489 (a sipp UAS, refuse.test) makes alice
    get `unsubscribed` and the state is dropped (a new subscribe sends a new SUBSCRIBE); one that answers
    423 with Min-Expires: 900 gets a new SUBSCRIBE with Expires >= 900. P8: alice answers a SIP watcher's
    subscribe with `unsubscribed`: NOTIFY terminated;reason=rejected."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    uas = await sip_wait(sip.uas('refuser', *REFUSER_UAS, 'uas_subscribe.xml'))
    for code, attempt in ((403, 1), (603, 1), (489, 1), (403, 2)):
        jid = 'e%dx*refuse.test@%s' % (code, COMPONENT)
        mark, tmark, xmark = c.presence_mark(), uas.trace.mark(), h.main.mark()
        c.send_presence_raw("to='%s' type='subscribe'" % jid)
        await gateway_sent(h, jid, 'alice@' + XMPP_DOMAIN, 'unsubscribed', 10, xmark)
        await ping_as(c)
        got = [x for x in presences_from(c, jid, mark) if ptype(x) == 'unsubscribed']
        if h.server_name in DROPS_DENIAL_OF_PENDING:
            if attempt == 1 and code == 403:
                print('# p4: %s: the gateway sent `unsubscribed` after the %d; alice\'s client %s it'
                      % (h.server_name, code, 'got' if got else 'did not get'), flush=True)
        else:
            check(got, '`unsubscribed` from %s after the %d (attempt %d, P4): the gateway sent it, alice did not get it'
                  % (jid, code, attempt))
        m = await sip_wait(uas.trace.expect(lambda m: m.uri_of('to') == 'sip:e%dx@refuse.test' % code, 3, tmark,
                                            'the SUBSCRIBE at the refusing UAS', method='SUBSCRIBE'))
        check((m.header('event') or '').split(';')[0].strip() == 'presence', 'SUBSCRIBE Event %r (P1)' % m.header('event'))
        check('application/pidf+xml' in (m.header('accept') or ''), 'SUBSCRIBE Accept %r (P1)' % m.header('accept'))
        check(m.header('expires') == '600', 'SUBSCRIBE Expires %r, expected 600 (P1)' % m.header('expires'))
        wrong = [ptype(x) for x in presences_from(c, jid, mark) if ptype(x) not in ('unsubscribed', 'unavailable')]
        check(not wrong, 'alice got %s from %s, which refused' % (wrong, jid))

    # 423 Interval Too Brief with Min-Expires: 900: the gateway tries again with at least 900 (P4); the
    # presentity then refuses with 403
    jid = 'e423x*refuse.test@%s' % COMPONENT
    tmark, xmark = uas.trace.mark(), h.main.mark()
    c.send_presence_raw("to='%s' type='subscribe'" % jid)
    first = await sip_wait(uas.trace.expect(lambda m: m.uri_of('to') == 'sip:e423x@refuse.test', 5, tmark,
                                            'the SUBSCRIBE for e423x', method='SUBSCRIBE'))
    again = await sip_wait(uas.trace.expect(
        lambda m: m.uri_of('to') == 'sip:e423x@refuse.test' and m.header('cseq') != first.header('cseq'), 5, tmark,
        'a second SUBSCRIBE after 423 with Min-Expires: 900 (P4)', method='SUBSCRIBE'))
    exp = again.header('expires') or ''
    check(exp.isdigit() and int(exp) >= 900, 'the SUBSCRIBE after 423 (Min-Expires: 900) has Expires %r (P4)' % exp)
    await gateway_sent(h, jid, 'alice@' + XMPP_DOMAIN, 'unsubscribed', 5, xmark)

    user = 'w3-%d' % os.getpid()
    wjid = sip_jid('sip:%s@simple.test' % user)
    run = await watcher_start(h, sip, user, name='p8-refused')
    i = await watcher_subscribed(h, run, c, wjid, 'p8 refused watcher')
    await set_presence(h, c, attrs="to='%s' type='unsubscribed'" % wjid)
    i, n = await trace_wait(run, lambda m: is_notify(m) and notify_state(m)[0] == 'terminated', 5, i,
                            'NOTIFY terminated after alice refused')
    state, params = notify_state(n)
    check(params.get('reason') == 'rejected', 'NOTIFY %r, expected terminated;reason=rejected (P8)'
          % n.header('subscription-state'))
    if n.body:
        doc = gateway_pidf(n, 'the NOTIFY terminated;reason=rejected')
        h.expect_soft(not doc.open_tuples(), 'the NOTIFY terminated;reason=rejected shows alice open: %s' % doc.tuples)
    opened = [m for m in run.trace.messages()[:i] if is_notify(m) and b'<basic>open' in m.body]
    check(not opened, 'the refused watcher saw alice open: %s' % (opened[0].summary() if opened else ''))
    res = await run.wait()
    check(res.rc == 0, 'sipp watcher exited %d (see %s)' % (res.rc, res.out_path))


@presence
async def p6_xmpp_unsubscribes(h):
    """alice unsubscribes from carol: the gateway ends its SUBSCRIBE dialog with Expires: 0 (seen at
    Kamailio, in the dialog p1 began when it ran) and alice gets `unsubscribed` (P6)."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    if not h.state.get('carol_ci'):
        # p1 did not run: subscribe first (a server does not pass on a second `subscribed`)
        await subscribe_to(h, c, CAROL_JID)
    mark, kmark, xmark = c.presence_mark(), sip.kamailio_log.mark(), h.main.mark()
    c.send_presence_raw("to='%s' type='unsubscribe'" % CAROL_JID)
    # The gateway confirms with `unsubscribed`; alice's server has already set her subscription to none
    # when she sent unsubscribe, and RFC 6121 section 3.2.3 lets it drop an `unsubscribed` then: what the
    # gateway sent is read from its log, what reached alice is reported.
    await gateway_sent(h, CAROL_JID, 'alice@' + XMPP_DOMAIN, 'unsubscribed', 5, xmark)
    await ping_as(c)
    got = [x for x in presences_from(c, CAROL_JID, mark) if ptype(x) == 'unsubscribed']
    print('# p6: %s: the `unsubscribed` the gateway sent for alice\'s unsubscribe %s her client'
          % (h.server_name, 'reached' if got else 'did not reach'), flush=True)
    line = await sip_wait(sip.kamailio_log.expect(
        r'HDR SUBSCRIBE \S+ \(src 127\.0\.0\.1:5080\) ci=(\S+) .*expires=\[0\]', 3, kmark))
    ci = re.search(r' ci=(\S+)', line).group(1)
    req = sip.kamailio_log.grep(r'REQ SUBSCRIBE .* from %s \(src 127\.0\.0\.1:5080/\w+\) ci=%s '
                                % (re.escape(ALICE_SIP), re.escape(ci)), kmark)
    check(req, 'the SUBSCRIBE Expires: 0 (ci=%s) did not come from the gateway as alice' % ci)
    if h.state.get('carol_ci'):
        check(ci == h.state['carol_ci'], 'SUBSCRIBE Expires: 0 in dialog %s, but the subscription was %s'
              % (ci, h.state['carol_ci']))


@presence
async def p12_per_subscriber(h):
    """P12: alice and erin both watch grace@simple.test: each gets `subscribed` and grace's presence
    addressed to her own JID, over a SUBSCRIBE dialog of her own; once erin unsubscribed, a change of
    grace reaches alice only. Presence alice directs to one SIP watcher reaches that watcher only, not
    another watcher subscribed to erin; erin's reaches erin's watcher only."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    e = await h.user('erin')
    grace = 'sip:grace-%d@simple.test' % os.getpid()
    gjid = sip_jid(grace)
    note1 = 'grace one %s' % h.token('p12')
    etag = await sip_publish(h, sip, grace, pidf_doc(grace, 'g1', 'open', note1), name='p12-publish')
    kmark = sip.kamailio_log.mark()
    for who in (c, e):
        mark = await subscribe_to(h, who, gjid)
        el = await presence_wait(who, lambda x: is_presence(gjid, 'available')(x) and status_of(x) == note1, 5, mark,
                                 'grace available with %r' % note1)
        check(bare(el.get('to')) == who.boundjid.bare, 'presence for %s addressed to %r' % (who.boundjid.bare, el.get('to')))
    for user in ('alice', 'erin'):
        check(sip.kamailio_log.grep(r'REQ SUBSCRIBE %s from sip:%s\*xmpp\.test@sip\.test ' % (re.escape(grace), user), kmark),
              'no SUBSCRIBE for grace from %s at Kamailio (one dialog per watcher, P12)' % user)
    xmark = h.main.mark()
    e.send_presence_raw("to='%s' type='unsubscribe'" % gjid)
    await gateway_sent(h, gjid, 'erin@' + XMPP_DOMAIN, 'unsubscribed', 5, xmark)   # see p6_xmpp_unsubscribes
    await ping_as(e)     # what the gateway sent erin for the unsubscribe (unavailable) is in before the mark
    emark, amark = e.presence_mark(), c.presence_mark()
    await sip_unpublish(h, sip, grace, etag, name='p12-unpublish')
    await presence_wait(c, is_presence(gjid, 'unavailable'), 5, amark, 'grace unavailable at alice')
    await ping_as(e)     # anything the gateway sent erin before alice's unavailable is in now
    leaked = presences_from(e, gjid, emark)
    check(not leaked, 'erin, unsubscribed, still got presence from grace: %s' % to_text(leaked[0]) if leaked else '')

    # directed presence: to alice's watcher only
    ua, ue = 'w4-%d' % os.getpid(), 'w5-%d' % os.getpid()
    wa, we = sip_jid('sip:%s@simple.test' % ua), sip_jid('sip:%s@simple.test' % ue)
    bye_a, bye_e = h.token('bye-a'), h.token('bye-e')
    runs = {}
    for user, wjid, who, ruri, bye in ((ua, wa, c, ALICE_SIP, bye_a),
                                       (ue, we, e, 'sip:erin*%s@%s' % (XMPP_DOMAIN, SIP_DOMAIN), bye_e)):
        run = await watcher_start(h, sip, user, ruri=ruri, go=bye, end=bye, name='p12-' + user.split('-')[0])
        runs[user] = run
        i = await watcher_subscribed(h, run, who, wjid, 'watcher of %s' % who.boundjid.bare)
        await set_presence(h, who, attrs="to='%s' type='subscribed'" % wjid)
        await trace_wait(run, lambda m: is_notify(m) and notify_state(m)[0] == 'active', 5, i, 'NOTIFY active')
    ra, re_ = runs[ua], runs[ue]
    directed = h.token('directed')
    ma, me = ra.trace.mark(), re_.trace.mark()
    await set_presence(h, c, '<status>%s</status>' % directed, attrs="to='%s'" % wa)
    await trace_wait(ra, lambda m: is_notify(m) and directed.encode() in m.body, 5, ma,
                     'the NOTIFY with alice\'s directed presence at her watcher')
    erins = h.token('erin')
    await set_presence(h, e, '<status>%s</status>' % erins)
    await trace_wait(re_, lambda m: is_notify(m) and erins.encode() in m.body, 5, me, 'erin\'s presence at her watcher')
    leaked = [m for m in re_.trace.messages()[me:] if is_notify(m) and directed.encode() in m.body]
    check(not leaked, 'erin\'s watcher got the presence alice directed to another contact (P12)')
    leaked = [m for m in ra.trace.messages()[ma:] if is_notify(m) and (erins.encode() in m.body or b'erin*' in m.body)]
    check(not leaked, 'alice\'s watcher got erin\'s presence (P12)')
    # end both watchers: each refreshes and unsubscribes on seeing its token
    await set_presence(h, c, '<status>%s</status>' % bye_a, attrs="to='%s'" % wa)
    await set_presence(h, e, '<status>%s</status>' % bye_e)
    for run in (ra, re_):
        res = await run.wait()
        check(res.rc == 0, 'sipp watcher exited %d (see %s)' % (res.rc, res.out_path))
    await set_presence(h, c, '')


@presence
async def p13_publish(h):
    """P13 ([presence] publish_to = Kamailio): a watcher that SUBSCRIBEs at Kamailio's presence server
    for alice (Kamailio serves it from the gateway's PUBLISHes) sees her presence change in Kamailio's
    NOTIFY, and one change makes one PUBLISH; the gateway refreshes its publication with SIP-If-Match and
    no body; alice going offline removes the publication (PUBLISH Expires: 0). The gateway hears of a
    user's presence only from her server, which sends it to the contacts that may see it: alice needs one
    approved SIP watcher (henry, from p8_p10_baresip_watches_xmpp, made here when that did not run)."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    await henry_watches_alice(h, sip, c)
    user = 'w6-%d' % os.getpid()
    bye = h.token('bye')
    kmark = sip.kamailio_log.mark()
    run = await watcher_start(h, sip, user, target=KAM, local_ip=WATCH_HERE_IP, go=bye, end=bye, name='p13-watcher')
    i, r = await trace_wait(run, is_response((200, 202), 'SUBSCRIBE', 1), 5, 0, 'Kamailio\'s answer to the SUBSCRIBE')
    await sip_wait(sip.kamailio_log.expect(r'REQ SUBSCRIBE %s .*\(src %s:' % (re.escape(ALICE_SIP), re.escape(WATCH_HERE_IP)),
                                           3, kmark))
    check(not sip.kamailio_log.grep(r'SEND SUBSCRIBE %s to 127\.0\.0\.1:5080' % re.escape(ALICE_SIP), kmark),
          'Kamailio relayed the SUBSCRIBE from %s to the gateway: kamailio.sh should serve it' % WATCH_HERE_IP)
    i, n = await trace_wait(run, is_notify, 5, i, 'Kamailio\'s first NOTIFY')
    note = 'published %s' % h.token('p13')
    cmark = sip.kamailio_log.mark()
    await set_presence(h, c, '<show>xa</show><status>%s</status>' % note)
    i, n = await trace_wait(run, lambda m: is_notify(m) and note.encode() in m.body, 5, i,
                            'Kamailio\'s NOTIFY with alice\'s new status (published by the gateway)')
    doc = Pidf(n.body)
    check(doc.open_tuples(), 'Kamailio\'s NOTIFY for alice has nothing open: %s' % doc.tuples)
    await ping_as(c)    # every copy of alice's broadcast has reached the gateway
    changes = sip.kamailio_log.grep(r'HDR PUBLISH %s \(src 127\.0\.0\.1:5080\) .*ctype=\[application/pidf\+xml\]'
                                    % re.escape(ALICE_SIP), cmark)
    h.expect_soft(len(changes) == 1, '%d PUBLISHes with a body for one change of alice\'s presence, expected one '
                  '(one per copy of her broadcast?): %s' % (len(changes), changes[:4]))
    await sip_wait(sip.kamailio_log.expect(r"HDR PUBLISH ", 3, kmark))
    pubs = [l for l in sip.kamailio_log.grep(r'HDR PUBLISH ', kmark)]
    h.log('p13: PUBLISHes seen: %s' % pubs)
    # a refresh: no body, SIP-If-Match (RFC 3903 section 4.1); within publish_expires
    alice_pub = r'HDR PUBLISH %s \(src 127\.0\.0\.1:5080\) ' % re.escape(ALICE_SIP)
    refresh = await sip_wait(sip.kamailio_log.expect(alice_pub + r'.* expires=\[[1-9]\d*\] .*ctype=\[<null>\]',
                                                     PUBLISH_EXPIRES + 2, kmark))
    h.log('p13: refresh: %s' % refresh)
    check('if-match=[<null>]' not in refresh, 'a PUBLISH refresh without SIP-If-Match: %s' % refresh)
    for l in sip.kamailio_log.grep(alice_pub + r'.*ctype=\[application/pidf\+xml\]', kmark)[1:]:
        check('if-match=[<null>]' not in l, 'a PUBLISH that changes the body without SIP-If-Match (a new publication?): %s' % l)
    # offline: the publication goes
    pmark = sip.kamailio_log.mark()
    await set_presence(h, c, attrs="type='unavailable'")
    await sip_wait(sip.kamailio_log.expect(r'HDR PUBLISH %s \(src 127\.0\.0\.1:5080\) .*expires=\[0\]' % re.escape(ALICE_SIP),
                                           3, pmark))
    i, n = await trace_wait(run, lambda m: is_notify(m) and not (m.body and Pidf(m.body).open_tuples()), 5, i,
                            'Kamailio\'s NOTIFY with alice offline')
    # back online, and the watcher ends (it refreshes and unsubscribes on seeing `bye`)
    await set_presence(h, c, '<status>%s</status>' % bye)
    res = await run.wait()
    check(res.rc == 0, 'sipp watcher at Kamailio exited %d (see %s)' % (res.rc, res.out_path))


@presence
async def p14_limits(h):
    """P14 ([presence] max_per_user = 5): frank subscribes to 5 SIP users; the 6th subscribe gets a
    presence error policy-violation, and a SIP SUBSCRIBE to frank gets 503 with Retry-After; the 5
    subscriptions still work (a PUBLISH for the first reaches frank)."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    f = await h.user('frank')
    pid = os.getpid()
    jids = [sip_jid('sip:lim%d-%d@simple.test' % (n, pid)) for n in range(1, MAX_PER_USER + 2)]
    for jid in jids[:-1]:
        mark = await subscribe_to(h, f, jid)
        await presence_wait(f, is_presence(jid, 'unavailable'), 5, mark, 'unavailable from %s' % jid)
    over = jids[-1]
    mark, xmark = f.presence_mark(), h.main.mark()
    f.send_presence_raw("to='%s' type='subscribe' id='p14-over'" % over)
    await h.main.expect(r'subscribe from frank@xmpp\.test to %s refused' % re.escape(over), 5, start=xmark)
    # The error goes to the subscribe's sender, frank's bare JID (servers stamp subscription requests so);
    # whether his client sees a presence error sent to his bare JID is the server's choice (RFC 6121
    # section 8.5.2.1.1 lets it ignore one): what the gateway sent is read from its log, what reached
    # frank is reported.
    sent = await h.main.expect(r">> <presence from='%s' to='frank@xmpp\.test' type='error' id='p14-over'>.*</presence>"
                               % re.escape(over), 3, start=xmark)
    try:
        el = ET.fromstring(sent[2].split('>> ', 1)[1])
    except ET.ParseError as e:
        raise Fail('the presence error in the gateway log is not XML (%s): %s' % (e, sent[2])) from None
    cond = error_condition(el)
    check(cond is not None and cond[1] == 'policy-violation', 'error %s, expected policy-violation (P14): %s'
          % (cond, sent[2]))
    check(cond[0] in ('modify', 'wait'), 'policy-violation of type %r, expected modify or wait (RFC 6120 section 8.3.3.12)' % cond[0])
    await ping_as(f)
    got = [x for x in presences_from(f, over, mark) if ptype(x) == 'error']
    print('# p14: %s: the presence error for the subscribe over the limit %s frank\'s client'
          % (h.server_name, 'reached' if got else 'did not reach'), flush=True)
    if got:
        check(error_condition(got[0]) == cond, 'frank got %s, the gateway sent %s' % (to_text(got[0]), sent[2]))
    wrong = [ptype(x) for x in presences_from(f, over, mark) if ptype(x) in ('subscribed', 'available')]
    check(not wrong, 'frank got %s from %s over the limit' % (wrong, over))
    r = await sip.uac('uac_subscribe_once.xml', GATEWAY, (503,), name='p14-sip-over',
                      ruri='sip:frank*%s@%s' % (XMPP_DOMAIN, SIP_DOMAIN), expires='60',
                      **{'from': 'sip:w7-%d@simple.test' % pid})
    check(r.status == 503, 'SUBSCRIBE to frank over the limit: %s, expected 503 (trace %s)' % (r.status, r.trace_path))
    retry = r.final.header('retry-after')
    check(retry is not None and re.match(r'\d+', retry), '503 without Retry-After: %r' % retry)
    check(r.final.reason_problem() is None, 'the 503 is malformed: %s' % r.final.reason_problem())
    # existing state unharmed
    first = 'sip:lim1-%d@simple.test' % pid
    note = 'still here %s' % h.token('p14')
    mark = f.presence_mark()
    etag = await sip_publish(h, sip, first, pidf_doc(first, 'l1', 'open', note), name='p14-publish')
    await presence_wait(f, lambda x: is_presence(jids[0], 'available')(x) and status_of(x) == note, 5, mark,
                        'presence of %s after the refusals' % jids[0])
    await sip_unpublish(h, sip, first, etag, name='p14-unpublish')


async def restart_main(h):
    """Stop the main instance (SIGTERM: it must exit 0) and start its successor with the same config
    (same [sip] listen, metrics port, [presence] state_file); returns it, link up, as h.main."""
    old = h.main
    await h.stop_instance(old)
    check(h.stop_results[old.name][0] == 0, '%s did not exit 0 on SIGTERM: %r' % (old.name, h.stop_results[old.name]))
    n = sum(1 for x in h.instances if x.name.startswith('main'))
    new = h.new_xsgw('main%d' % (n + 1), SECRET, sip_port=5080, metrics_port=METRICS_PORT,
                     presence=h.main_presence(), sip_extra=h.main_sip(), **MAIN)
    await new.start()
    h.main = new
    await new.expect(r'xmpp: link up', within=10)
    return new


@presence
async def p7_gateway_restart(h):
    """xsgw restarts while alice watches ruth@simple.test. The stopping gateway tells alice ruth is
    unavailable (X10) and keeps who watches whom in [presence] state_file; the next instance subscribes
    again once its link is up, and ruth's presence comes back to alice with nothing from her (Decisions in
    presence_bridge.hpp). alice sends initial presence again: her server probes ruth, the gateway answers
    from the fresh subscription, without a SUBSCRIBE (P7). Then the same restart without the state file (a gateway that keeps nothing, as outside
    systemd by default): nothing comes back at link up; once alice sends initial presence again
    (unavailable, then available, in the same session) her server probes ruth, the probe re-establishes
    the subscription (P7) and the presence comes back. Leaves h.main the last instance."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    ruth = 'sip:ruth-%d@simple.test' % os.getpid()
    rjid = sip_jid(ruth)
    note = 'ruth here %s' % h.token('p7')
    etag = await sip_publish(h, sip, ruth, pidf_doc(ruth, 'r1', 'open', note), name='p7-publish')
    mark = await subscribe_to(h, c, rjid)
    await presence_wait(c, lambda x: is_presence(rjid, 'available')(x) and status_of(x) == note, 5, mark, 'ruth available')
    back = lambda x: is_presence(rjid, 'available')(x) and status_of(x) == note   # noqa: E731

    # 1. with the state file
    mark, t0 = c.presence_mark(), time.monotonic()
    stop = asyncio.ensure_future(restart_main(h))
    try:
        await presence_wait(c, is_presence(rjid, 'unavailable'), 5, mark, 'unavailable from ruth as the gateway stopped (X10)')
    finally:
        new = await stop
    try:
        with open(h.state_file) as f:
            kept = f.read()
    except OSError as e:
        raise Fail('no [presence] state_file after the restart: %s' % e) from None
    check(re.search(r'(?m)^alice@xmpp\.test %s$' % re.escape(rjid), kept),
          '%s does not name alice watching %s: %r' % (h.state_file, rjid, kept[:500]))
    await presence_wait(c, back, 5, mark, 'ruth available again after the restart, with nothing from alice')
    h.log('p7: ruth back %.2fs after the stop began' % (time.monotonic() - t0))
    # The restore is paced: 'restoring N ...' at link up, 'restored N ... in X s' once every pair
    # has settled (a pair of an earlier scenario whose peer is gone may take until Timer N).
    await new.expect(r'restor(?:ing|ed) \d+ subscriptions', 5)
    print('# p7: %s: with state_file, ruth came back %.1fs after the stop began, with nothing from alice'
          % (h.server_name, time.monotonic() - t0), flush=True)

    # P7: alice's initial presence, sent again, makes her server probe ruth; the subscription is fresh,
    # so the gateway answers from what it holds: no new SUBSCRIBE, no fetch at Kamailio
    await ping_as(c)     # the answers to the probes her server sent at the restart are in before the mark
    mark, kmark, xmark = c.presence_mark(), sip.kamailio_log.mark(), new.mark()
    await set_presence(h, c, attrs="type='unavailable'")
    await set_presence(h, c, '')
    await presence_wait(c, back, 5, mark, 'ruth available after alice sent initial presence again (a probe)')
    h.expect_soft(new.grep(r"type='probe' from alice@xmpp\.test(/\S*)? to %s" % re.escape(rjid), xmark),
                  'ruth came back, but the gateway logged no probe from alice for ruth')
    fetched = sip.kamailio_log.grep(r'REQ SUBSCRIBE %s ' % re.escape(ruth), kmark)
    h.expect_soft(not fetched, 'a probe for a fresh subscription made a SUBSCRIBE (P7: the cached state answers it): %s'
                  % (fetched[0] if fetched else ''))

    # 2. without it: the server's probes at alice's next initial presence rebuild the state
    await ping_as(c)
    mark = c.presence_mark()
    await h.stop_instance(h.main)
    os.unlink(h.state_file)
    new = await restart_main(h)
    early = [x for x in presences_from(c, rjid, mark) if ptype(x) == 'available']
    check(not early, 'ruth available at alice although the gateway kept nothing: %s' % (to_text(early[0]) if early else ''))
    mark, xmark = c.presence_mark(), new.mark()
    await set_presence(h, c, attrs="type='unavailable'")
    await set_presence(h, c, '')
    try:
        await presence_wait(c, back, 5, mark, 'ruth available again after alice sent initial presence')
    except Fail as e:
        probed = new.grep(r'probe from alice@xmpp\.test to %s' % re.escape(rjid), xmark)
        raise Fail('%s (the new instance logged %d probe(s) from alice for ruth: %s)'
                   % (e, len(probed), 'the server probed, the gateway did not restore' if probed
                      else '%s sent no probe for initial presence re-sent in the same session' % h.server_name)) from None
    h.expect_soft(new.grep(r'probe from alice@xmpp\.test to %s' % re.escape(rjid), xmark),
                  'ruth came back, but the new instance logged no probe from alice for ruth')
    await sip_unpublish(h, sip, ruth, etag, name='p7-unpublish')


@presence
async def p9_shutdown_deactivated(h):
    """An approved sipp watcher of alice stays subscribed while xsgw stops (SIGTERM): the stopping gateway
    sends it NOTIFY terminated;reason=deactivated with a closed PIDF (P9 at shutdown, Decisions in
    presence_bridge.hpp), which the watcher answers 200 and ends on. Leaves h.main a fresh instance."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    user = 'w3-%d' % os.getpid()
    wjid = sip_jid('sip:%s@simple.test' % user)
    run = await watcher_start(h, sip, user, name='p9-shutdown', within=20)
    i = await watcher_subscribed(h, run, c, wjid, 'p9 shutdown watcher')
    await set_presence(h, c, attrs="to='%s' type='subscribed'" % wjid)
    i, n = await trace_wait(run, lambda m: is_notify(m) and notify_state(m)[0] == 'active' and b'<basic>open' in m.body,
                            5, i, 'NOTIFY active with an open PIDF after alice approved')
    t0 = time.monotonic()
    stop = asyncio.ensure_future(restart_main(h))
    try:
        i, n = await trace_wait(run, lambda m: is_notify(m) and notify_state(m)[0] == 'terminated', 5, i,
                                'NOTIFY terminated as the gateway stopped (P9)')
    finally:
        await stop
    h.log('p9: terminated %.2fs after the stop began' % (time.monotonic() - t0))
    state, params = notify_state(n)
    check(params.get('reason') == 'deactivated', 'final NOTIFY at shutdown %r, expected terminated;reason=deactivated (P9)'
          % n.header('subscription-state'))
    doc = gateway_pidf(n, 'the final NOTIFY at shutdown')
    check(doc.tuples and not doc.open_tuples(), 'the final NOTIFY at shutdown has %s, expected a closed PIDF (P9)'
          % doc.tuples)
    res = await run.wait()
    check(res.rc == 0, 'sipp watcher exited %d (see %s)' % (res.rc, res.out_path))


async def fetch_presentity(h, sip, name, after_pending, active_note, fetch_note):
    """A sipp presentity.test UAS (sipp/uas_presentity_fetch.xml) on PRESENTITY_UAS in place of any other
    one there: its copy in the work directory takes the notes and what follows the pending NOTIFY."""
    for u in [u for u in sip.uases if u.ip == PRESENTITY_UAS[0] and u.port == PRESENTITY_UAS[1]]:
        await u.stop()
        sip.uases.remove(u)
    with open(os.path.join(SIPP_DIR, 'uas_presentity_fetch.xml')) as f:
        text = f.read()
    copy = os.path.join(sip.dir, name + '.xml')
    with open(copy, 'w') as f:
        f.write(text.replace('@AFTER_PENDING@', after_pending).replace('@ACTIVENOTE@', escape(active_note))
                .replace('@FETCHNOTE@', escape(fetch_note)))
    return await sip_wait(sip.uas(name, *PRESENTITY_UAS, copy))


@presence
async def p7_fetch_pending(h):
    """P7 fetch path: alice watches a presentity.test user (sipp/uas_presentity_fetch.xml) that goes
    active, so her roster says subscription to. xsgw restarts with its state file; the presentity now
    keeps the new instance's subscription pending (a subscription with no state yet). alice sends initial
    presence again: her server probes the contact, and the gateway fetches (SUBSCRIBE Expires: 0 in a new
    dialog, RFC 3856 section 3.3); the fetch's NOTIFY state (open, its note) reaches alice. Leaves h.main
    a fresh instance and nothing on PRESENTITY_UAS."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    user = 'fetch-%d' % os.getpid()
    jid = '%s*presentity.test@%s' % (user, COMPONENT)
    n1, n2 = 'active %s' % h.token('p7a'), 'fetched %s' % h.token('p7f')
    await fetch_presentity(h, sip, 'presentity-active', 'active', n1, n2)
    mark = await subscribe_to(h, c, jid)
    await presence_wait(c, lambda x: is_presence(jid, 'available')(x) and status_of(x) == n1, 5, mark,
                        'available from %s with the note of the active NOTIFY' % jid)

    await ping_as(c)
    old = h.main
    await h.stop_instance(old)
    check(h.stop_results[old.name][0] == 0, '%s did not exit 0 on SIGTERM: %r' % (old.name, h.stop_results[old.name]))
    uas = await fetch_presentity(h, sip, 'presentity-pending', 'wait_unsub', n1, n2)
    n = sum(1 for x in h.instances if x.name.startswith('main'))
    new = h.new_xsgw('main%d' % (n + 1), SECRET, sip_port=5080, metrics_port=METRICS_PORT,
                     presence=h.main_presence(), sip_extra=h.main_sip(), **MAIN)
    await new.start()
    h.main = new
    await new.expect(r'xmpp: link up', within=10)
    i, sub = await sip_wait(uas.trace.expect_msg(
        lambda m: m.direction == 'received' and m.method == 'SUBSCRIBE' and m.header('expires') not in (None, '0'),
        5, 0, 'the new instance\'s SUBSCRIBE for the pair it restored'))
    i, _ = await sip_wait(uas.trace.expect_msg(is_response((200,), 'NOTIFY'), 3, i, 'the 200 for the pending NOTIFY'))

    await ping_as(c)
    mark, t0 = c.presence_mark(), time.monotonic()
    await set_presence(h, c, attrs="type='unavailable'")
    await set_presence(h, c, '')
    try:
        i, fetch = await sip_wait(uas.trace.expect_msg(
            lambda m: m.direction == 'received' and m.method == 'SUBSCRIBE' and m.header('expires') == '0', 5, i,
            'a fetch (SUBSCRIBE Expires: 0) after alice sent initial presence again (P7)'))
    except Fail as e:
        probed = new.grep(r"probe' from alice@xmpp\.test(/\S*)? to %s" % re.escape(jid))
        raise Fail('%s (the gateway logged %d probe(s) from alice for %s)' % (e, len(probed), jid)) from None
    check(fetch.call_id != sub.call_id, 'the fetch is in the pending dialog (%s), expected a new one' % sub.call_id)
    check('tag=' not in (fetch.header('to') or ''), 'the fetch has a To tag: %r' % fetch.header('to'))
    await presence_wait(c, lambda x: is_presence(jid, 'available')(x) and status_of(x) == n2, 5, mark,
                        'available from %s with the note of the fetch\'s NOTIFY (P7)' % jid)
    h.log('p7: fetched state at alice %.2fs after her initial presence' % (time.monotonic() - t0))
    await uas.stop()
    sip.uases.remove(uas)


@messaging
async def s4_tls_to_sip(h):
    """S4, D1: a message to bob*tls.test goes over TLS: NAPTR SIPS+D2T -> _sips._tcp -> Kamailio's TLS
    port, whose certificate names tls.test (not pbx.simple.test, the SRV target: RFC 5922 checks the
    URI's domain). Kamailio logs it as received over tls; alice gets no error."""
    sip = h.sip_peers()
    kmark, xmark = sip.kamailio_log.mark(), h.main.mark()
    token = h.token('s4')
    c, msg_id, cmark = await alice_sends(h, 'bob*tls.test@' + COMPONENT, '<body>over TLS %s</body>' % token)
    line = await sip_wait(sip.kamailio_log.expect(r'TLSDOMAIN MESSAGE sip:bob@tls\.test from sip:alice\*xmpp\.test@sip\.test\S* '
                                                  r'proto=tls \(dst 127\.0\.0\.2:5061\)', 10, kmark))
    h.log('kamailio: %s' % line.strip())
    check(sip.dns_log.grep(r'query\[SRV\] _sips\._tcp\.tls\.test from'),
          'no SRV lookup of _sips._tcp.tls.test in %s' % sip.dns_log.path)
    await h.main.expect(r'TLS peer 127\.0\.0\.2:5061 \(pbx\.simple\.test\) proved the name tls\.test', 5, xmark)
    await no_error_for(h, c, msg_id, cmark)


async def s4_refused(h, domain, reason_rx):
    """alice writes to bob*DOMAIN, whose TLS peer does not prove DOMAIN: the gateway sends nothing
    there; alice gets an error at once (not after SIP's 32 s timeout) whose text names the reason,
    and the log says it."""
    sip = h.sip_peers()
    kmark, xmark = sip.kamailio_log.mark(), h.main.mark()
    to = 'bob*%s@%s' % (domain, COMPONENT)
    c, msg_id, cmark = await alice_sends(h, to, '<body>refused %s</body>' % h.token('s4'))
    t0 = time.monotonic()
    el = await expect_message_error(h, c, msg_id, to, cmark, ('internal-server-error',), within=10)
    took = time.monotonic() - t0
    text = error_text(el) or ''
    check(re.search(reason_rx, text), 'error text %r does not give the reason /%s/' % (text, reason_rx))
    check(took < 8, 'the error took %.1f s (expected at once, not a SIP timeout)' % took)
    await h.main.expect(r'TLS peer 127\.0\.0\.2:\d+ \(pbx\.simple\.test\) refused for %s: %s'
                        % (re.escape(domain), reason_rx), 5, xmark)
    check(not sip.kamailio_log.grep(r'TLSDOMAIN \S+ sip:bob@%s' % re.escape(domain), kmark),
          'a request for %s reached Kamailio over an unverified connection' % domain)


@messaging
async def s4_tls_wrong_name(h):
    """S4: badname.test's SRV names Kamailio's TLS port, whose certificate names only tls.test."""
    await s4_refused(h, 'badname.test', r'its certificate names tls\.test, not badname\.test')


@messaging
async def s4_tls_untrusted(h):
    """S4: untrusted.test's TLS peer presents a self-signed certificate no configured CA signed."""
    await s4_refused(h, 'untrusted.test', r'its certificate is not trusted: self-signed certificate')


@messaging
async def s4_tls_from_sip(h):
    """S4: a MESSAGE from tlsuser@simple.test reaches alice through Kamailio, which relays it to the
    gateway's tls_listen (127.0.0.1:5061) and accepts the gateway's certificate (sip.test, test CA)."""
    sip = h.sip_peers()
    await h.main.ensure_link_up()
    c = await h.alice()
    body = 'from SIP over TLS %s' % h.token('s4')
    mark, kmark = c.message_mark(), sip.kamailio_log.mark()
    r = await sip.message(KAM, ALICE_SIP, 'sip:tlsuser@simple.test', ALICE_SIP, 'text/plain;charset=UTF-8', body,
                          expect=(202,), name='s4-from-sip')
    check(r.status == 202, 'MESSAGE over TLS: final status %s, expected 202 (sipp trace %s)'
          % (r.status if r.final else 'none', r.trace_path))
    el = await alice_wait(c, lambda m: body_of(m) == body, 5, mark, 'a message with body %r' % body)
    check(bare(el.get('from')) == 'tlsuser*simple.test@' + COMPONENT, 'message from %r' % el.get('from'))
    await sip_wait(sip.kamailio_log.expect(r'SEND MESSAGE sip:alice\*xmpp\.test@sip\.test to 127\.0\.0\.1:%d/tls'
                                           % GATEWAY_TLS_PORT, 3, kmark))


SCENARIOS = [x1_x2_handshake, x6_disco, x7_version_ping, x8_unknown_iq, x9_iq_gateway,
             m1_xmpp_to_sip, m6_sip_to_xmpp, m2_no_contact, m5_unknown_user, m5_unresolvable, d5_failover,
             m4_large_over_tcp, m6_cpim_html_415, m8_chat_states, m9_receipt, m12_bounce_notice,
             a9_foreign_request_uri, a2_no_separator, s3_subject_crlf,
             s4_tls_to_sip, s4_tls_wrong_name, s4_tls_untrusted, s4_tls_from_sip, s5_per_sender,
             metrics_scrape,
             p1_p2_p3_p11_xmpp_watches_sip, p2_p5_pending_then_active, p1_481_new_dialog, p8_p9_p10_sip_watches_xmpp, p9_watcher_expiry,
             p8_p10_baresip_watches_xmpp, p4_p8_rejection, p6_xmpp_unsubscribes, p12_per_subscriber,
             p13_publish, p14_limits, p7_gateway_restart, p9_shutdown_deactivated, p7_fetch_pending,
             x3_wrong_secret, x3_conflict, x3_dead_link, m5_link_down_503, x3_server_restart, x10_sigterm,
             from_domain_check, s5_message_size, s7_allowed_domains, s1_secret_not_logged]


# ---------------------------------------------------------------------------------------------

def group_of(scenario):
    """'messaging' or 'presence' for the scenarios that need the SIP peers (and the gateway's messaging
    or presence), else 'xmpp'."""
    return getattr(scenario, 'group', 'xmpp')


SIP_GROUPS = ('messaging', 'presence')


async def run(args):
    selected = [s for s in SCENARIOS if (not args.scenario or s.__name__ in args.scenario)
                and (not args.group or group_of(s) in args.group)]
    h = Harness(args)
    h.prepare_workdir()
    failed = []
    interrupted = False
    t0 = time.monotonic()
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        setup_error = None
        try:
            await h.setup(with_sip=any(group_of(s) in SIP_GROUPS for s in selected))
        except Fail as e:
            setup_error = str(e)
        for n, scenario in enumerate(selected):
            name = scenario.__name__
            h.upcoming = [s.__name__ for s in selected[n + 1:]]
            h.log('=== %s' % name)

            async def body(scenario=scenario):
                if setup_error:
                    raise Fail('setup: %s' % setup_error)
                if group_of(scenario) in SIP_GROUPS and h.sip_error:
                    raise Fail('SIP peers: %s' % h.sip_error)
                h.soft = []
                try:
                    await asyncio.wait_for(scenario(h), SCENARIO_DEADLINE)
                except Fail as e:
                    raise Fail('; '.join(h.soft + [str(e)])) from None
                check(not h.soft, '; '.join(h.soft))

            if not await run_scenario(h.log, name, body, SCENARIO_DEADLINE):
                failed.append(name)
    except asyncio.CancelledError:
        interrupted = True
        print('# interrupted: stopping everything', flush=True)
    finally:
        await h.teardown()
        times = ', '.join('%.2fs' % t for t in h.server.start_times)
        sip_time = '; SIP peers start %.2fs' % h.sip.start_time if h.sip and h.sip.start_time else ''
        print('# %s: %d scenario(s), %d failed, %.1fs in all; server start(s): %s%s'
              % (args.server, len(selected), len(failed), time.monotonic() - t0, times, sip_time), flush=True)
        if failed or interrupted:
            print('# logs:', flush=True)
            for p in h.log_paths():
                print('#   %s' % p, flush=True)
    return 1 if failed or interrupted else 0


async def run_scenario(log, name, body, deadline, failures=(Fail,)):
    """Runs one scenario, body() (which keeps to deadline), and says how it went: `PASS name (T s)` or `FAIL name:
    why` on stdout and in the run log (log: a function of one line). A failure is one of `failures` (the reason is
    its text), the deadline, or any other exception (a harness bug must still show as a failure, with its
    traceback in the log). True when it passed; an interruption fails it and goes on up."""
    ts = time.monotonic()
    try:
        await body()
    except failures as e:
        log('=== FAIL %s: %s' % (name, e))
        print('FAIL %s: %s' % (name, e), flush=True)
    except asyncio.TimeoutError:
        log('=== FAIL %s: not done within %.0fs' % (name, deadline))
        print('FAIL %s: not done within %.0fs' % (name, deadline), flush=True)
    except asyncio.CancelledError:
        print('FAIL %s: interrupted' % name, flush=True)
        raise
    except Exception as e:
        log('=== FAIL %s: %s' % (name, traceback.format_exc()))
        print('FAIL %s: %s: %s' % (name, type(e).__name__, e), flush=True)
    else:
        log('=== PASS %s (%.2fs)' % (name, time.monotonic() - ts))
        print('PASS %s (%.1fs)' % (name, time.monotonic() - ts), flush=True)
        return True
    return False


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--xsgw', help='path of the xsgw binary under test')
    p.add_argument('--server', choices=sorted(SERVER_IPS))
    p.add_argument('--workdir', help='configs, logs and server state go here')
    p.add_argument('--scenario', nargs='+', action='extend', metavar='NAME',
                   help='run only these scenarios (in the fixed order); default: all')
    p.add_argument('--group', nargs='+', action='extend', choices=('xmpp', 'messaging', 'presence'),
                   help='run only the scenarios of these groups: xmpp (the component link and its '
                        'services), messaging or presence (need the SIP peers and the gateway\'s messaging '
                        'or presence); default: all')
    p.add_argument('--list', action='store_true', help='print the scenario names (of --group, if given) and exit')
    args = p.parse_args()
    names = [s.__name__ for s in SCENARIOS]
    if args.list:
        print('\n'.join(s.__name__ for s in SCENARIOS if not args.group or group_of(s) in args.group))
        return 0
    for required in ('xsgw', 'server', 'workdir'):
        if getattr(args, required) is None:
            p.error('--%s is required' % required)
    unknown = set(args.scenario or []) - set(names)
    if unknown:
        p.error('unknown scenario(s): %s (known: %s)' % (', '.join(sorted(unknown)), ', '.join(names)))
    args.xsgw = os.path.abspath(args.xsgw)
    return asyncio.run(run(args))


if __name__ == '__main__':
    sys.exit(main())
