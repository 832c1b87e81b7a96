#!/usr/bin/python3
"""End-to-end scenarios: the real xsgw binary against a real XMPP server (STANDARDS.md section X).

usage: /usr/bin/python3 test/e2e/run.py --xsgw PATH --server jabberd2|prosody|ejabberd \
           --workdir DIR [--scenario NAME ...] [--list]

Starts the server with test/e2e/peers/<server>.sh (PEERS=DIR/peers), writes the xsgw configs
into DIR (mode 0600), runs xsgw as a subprocess (its output kept in DIR/xsgw-<name>.log), runs
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
import signal
import sys
import time
import traceback

logging.getLogger().addHandler(logging.NullHandler())  # keep slixmpp's import-time warnings off stderr
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xmpp_client import Client, ClientError, error_condition, local, log_to, ns, to_text  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_IPS = {'jabberd2': '127.0.0.11', 'prosody': '127.0.0.12', 'ejabberd': '127.0.0.13'}
XMPP_DOMAIN = 'xmpp.test'
COMPONENT = 'sip.test'
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
# Instances that are meant to be refused: short backoff so that a few seconds show several retries.
REFUSED = dict(reconnect_min=200, reconnect_max=1000, keepalive_interval=30, keepalive_timeout=10)

SCENARIO_DEADLINE = 60.0


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
        self.script = os.path.join(HERE, 'peers', name + '.sh')
        self.start_times = []

    async def _run(self, action, within):
        env = dict(os.environ, PEERS=self.peers_dir)
        proc = await asyncio.create_subprocess_exec(
            self.script, action, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        done = asyncio.ensure_future(proc.communicate())
        try:
            out, _ = await asyncio.wait_for(asyncio.shield(done), within)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise Fail('%s %s: no result within %.0fs' % (os.path.basename(self.script), action, within)) from None
        except asyncio.CancelledError:
            # interrupted: let the recipe finish (its own waits are bounded), or a half-started
            # server would escape the stop at teardown
            await asyncio.wait_for(done, within)
            raise
        text = out.decode(errors='replace').strip()
        self.log('%s %s -> rc=%d %s' % (self.name, action, proc.returncode, text))
        if proc.returncode != 0:
            raise Fail('%s %s failed (rc=%d): %s' % (os.path.basename(self.script), action, proc.returncode,
                                                     text.splitlines()[-1] if text else 'no output'))
        return text

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

    def __init__(self, binary, workdir, name, server_ip, sip_port, secret, log, **link):
        self.binary, self.name, self.log = binary, name, log
        self.link = link
        self.config_path = os.path.join(workdir, 'xsgw-%s.toml' % name)
        self.log_path = os.path.join(workdir, 'xsgw-%s.log' % name)
        self.lines = []           # (monotonic time, text)
        self.proc = None
        self.rc = None            # exit status once the process has ended and its output is read
        self._changed = asyncio.Condition()
        self._reader = None
        self._write_config(server_ip, sip_port, secret, link)

    def _write_config(self, server_ip, sip_port, secret, link):
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
            '[sip]',
            'domain = "%s"' % XMPP_DOMAIN,
            'listen = "sip:127.0.0.1:%d"' % sip_port,
            '[dns]',
            'servers = ["127.0.0.53:53"]  # loopback only: no lookup may leave the machine',
            '[log]',
            'level = "debug"',
            ''])
        if os.path.exists(self.config_path):
            os.unlink(self.config_path)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # holds a secret
        with os.fdopen(fd, 'w') as f:
            f.write(text)

    async def start(self):
        if not os.access(self.binary, os.X_OK):
            raise Fail('xsgw binary %s does not exist or is not executable' % self.binary)
        self.log('%s: start %s -c %s' % (self.name, self.binary, self.config_path))
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, '-c', self.config_path, stdin=asyncio.subprocess.DEVNULL,
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
        self._alice = None
        self.stopped_pid = None      # a SIGSTOPped server process to SIGCONT at teardown
        self._sip_port = 5080

    def prepare_workdir(self):
        """Create DIR; remove what an earlier run of ours left there (and only that)."""
        os.makedirs(self.workdir, exist_ok=True)
        os.chmod(self.workdir, 0o755)    # the ejabberd user must reach DIR/peers
        for pattern in ('xsgw-*.log', 'xsgw-*.toml', 'client-*.log', 'run.log'):
            for path in glob.glob(os.path.join(self.workdir, pattern)):
                os.unlink(path)
        self.log = RunLog(os.path.join(self.workdir, 'run.log'))
        self.server = Server(self.server_name, self.peers_dir, self.log)

    async def setup(self):
        if os.path.isdir(self.peers_dir):
            await self.server.stop()        # a copy left running by an interrupted run
            shutil.rmtree(self.peers_dir)
        os.makedirs(self.peers_dir)
        os.chmod(self.peers_dir, 0o755)
        out = await self.server.start()
        print('# %s' % out.splitlines()[-1], flush=True)
        print('# %s start took %.2fs (wall, from run.py)' % (self.server_name, self.server.start_times[-1]),
              flush=True)
        self.main = self.new_xsgw('main', SECRET, **MAIN)
        await self.main.start()

    def new_xsgw(self, name, secret, **link):
        x = Xsgw(self.args.xsgw, self.workdir, name, self.server.ip, self._sip_port, secret, self.log, **link)
        self._sip_port += 1
        self.instances.append(x)
        return x

    async def stop_instance(self, x):
        self.stop_results[x.name] = await x.stop()
        self.log('%s: stop -> %r' % (x.name, self.stop_results[x.name]))

    async def alice(self):
        """alice@xmpp.test, logged in (again, if the server restarted since)."""
        if self._alice is not None and self._alice.up:
            return self._alice
        n = len(self.clients) + 1
        log_to(os.path.join(self.workdir, 'client-alice-%d.log' % n))
        c = Client('alice@' + XMPP_DOMAIN, 'alicepw', self.server.ip)
        self.clients.append(c)
        try:
            await c.login(within=10)
        except ClientError as e:
            raise Fail('alice cannot log in to %s: %s (client log %s)'
                       % (self.server_name, e, os.path.join(self.workdir, 'client-alice-%d.log' % n))) from None
        self.log('alice: session %s' % c.boundjid.full)
        self._alice = c
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
        if self.stopped_pid is not None:
            try:
                os.kill(self.stopped_pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        for c in self.clients:
            await c.close()
        for x in self.instances:
            try:
                await x.stop()
            except Exception as e:   # keep going: the server must be stopped too
                self.log('%s: stop failed: %r' % (x.name, e))
        if self.server is not None:
            try:
                await self.server.stop()
            except Fail as e:
                print('# %s' % e, flush=True)

    def log_paths(self):
        paths = sorted(glob.glob(os.path.join(self.workdir, '*.log')))
        paths += sorted(glob.glob(os.path.join(self.peers_dir, '**', '*.log'), recursive=True))
        return paths


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
    await m.ensure_link_up()
    mark = m.mark()
    await h.server.stop()
    down = await m.expect(r'xmpp: link down', within=10, start=mark)
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


SCENARIOS = [x1_x2_handshake, x6_disco, x7_version_ping, x8_unknown_iq, x9_iq_gateway,
             x3_wrong_secret, x3_conflict, x3_dead_link, x3_server_restart, x10_sigterm,
             s1_secret_not_logged]


# ---------------------------------------------------------------------------------------------

async def run(args):
    selected = [s for s in SCENARIOS if not args.scenario or s.__name__ in args.scenario]
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
            await h.setup()
        except Fail as e:
            setup_error = str(e)
        for scenario in selected:
            name = scenario.__name__
            h.log('=== %s' % name)
            ts = time.monotonic()
            try:
                if setup_error:
                    raise Fail('setup: %s' % setup_error)
                await asyncio.wait_for(scenario(h), SCENARIO_DEADLINE)
                h.log('=== PASS %s (%.2fs)' % (name, time.monotonic() - ts))
                print('PASS %s' % name, flush=True)
            except Fail as e:
                failed.append(name)
                h.log('=== FAIL %s: %s' % (name, e))
                print('FAIL %s: %s' % (name, e), flush=True)
            except asyncio.TimeoutError:
                failed.append(name)
                print('FAIL %s: not done within %.0fs' % (name, SCENARIO_DEADLINE), flush=True)
            except asyncio.CancelledError:
                failed.append(name)
                print('FAIL %s: interrupted' % name, flush=True)
                raise
            except Exception as e:  # a harness bug must still show as a failure, with its cause
                failed.append(name)
                h.log('=== FAIL %s: %s' % (name, traceback.format_exc()))
                print('FAIL %s: %s: %s' % (name, type(e).__name__, e), flush=True)
    except asyncio.CancelledError:
        interrupted = True
        print('# interrupted: stopping everything', flush=True)
    finally:
        await h.teardown()
        times = ', '.join('%.2fs' % t for t in h.server.start_times)
        print('# %s: %d scenario(s), %d failed, %.1fs in all; server start(s): %s'
              % (args.server, len(selected), len(failed), time.monotonic() - t0, times), flush=True)
        if failed or interrupted:
            print('# logs:', flush=True)
            for p in h.log_paths():
                print('#   %s' % p, flush=True)
    return 1 if failed or interrupted else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--xsgw', help='path of the xsgw binary under test')
    p.add_argument('--server', choices=sorted(SERVER_IPS))
    p.add_argument('--workdir', help='configs, logs and server state go here')
    p.add_argument('--scenario', nargs='+', action='extend', metavar='NAME',
                   help='run only these scenarios (in the fixed order); default: all')
    p.add_argument('--list', action='store_true', help='print the scenario names and exit')
    args = p.parse_args()
    names = [s.__name__ for s in SCENARIOS]
    if args.list:
        print('\n'.join(names))
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
