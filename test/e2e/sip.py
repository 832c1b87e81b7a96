"""The SIP side of the end-to-end scenarios: dnsmasq (the *.test zone), Kamailio (registrar for
simple.test) and sipp user agents, all on loopback.

- SipPeers starts and stops them through test/e2e/peers/{dns,kamailio}.sh and sipp, registers
  bob@simple.test at Kamailio with the contact of a sipp UAS, and sends MESSAGEs with a sipp UAC.
- SipTrace reads what a sipp UAS received (its -trace_msg file): every MESSAGE with its transport,
  headers and exact body bytes; scenarios wait for one with a deadline.
- LogFile waits for a line in a peer's log (Kamailio, dnsmasq) with a deadline.

Waiting means polling a file every 50 ms until a deadline, the same as the recipes' wait_log: an
event with a deadline, never a fixed sleep.
"""
import asyncio
import glob
import os
import re
import signal
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SIPP_DIR = os.path.join(HERE, 'sipp')
POLL = 0.05

KAMAILIO = ('127.0.0.2', 5060)         # registrar for simple.test; its NAPTR/SRV point here
BOB_UAS = ('127.0.0.1', 5070)          # bob@simple.test registers this contact (UDP)
FAILOVER_UAS = ('127.0.0.4', 5060)     # second SRV target of failover.test (the first, 127.0.0.3, is dead)
SIP_DOMAIN = 'simple.test'


class SipError(Exception):
    """A SIP peer did not start, or an expected SIP event did not happen in time."""


# ---------------------------------------------------------------------------------------------
# reading what sipp saw

COMPACT = {'c': 'content-type', 's': 'subject', 'm': 'contact', 'i': 'call-id', 'f': 'from',
           't': 'to', 'l': 'content-length', 'v': 'via', 'k': 'supported', 'e': 'content-encoding'}


class SipMessage:
    """One SIP request or response as it went over the wire: start line, headers (in order, names
    lowercased and compact forms expanded) and the body bytes."""

    def __init__(self, raw, direction, transport, when):
        self.raw, self.direction, self.transport, self.when = raw, direction, transport, when
        head, sep, body = raw.partition(b'\r\n\r\n')
        if not sep:
            head, _, body = raw.partition(b'\n\n')
        lines = head.decode('utf-8', errors='replace').split('\r\n')
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (' ', '\t') and self.headers:      # folded continuation line
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + ' ' + line.strip())
                continue
            name, _, value = line.partition(':')
            name = name.strip().lower()
            self.headers.append((COMPACT.get(name, name), value.strip()))
        clen = self.header('content-length')
        self.body = body[:int(clen)] if clen is not None and clen.isdigit() else body
        self.head_text = head.decode('utf-8', errors='replace')

    @property
    def method(self):
        return None if self.start.startswith('SIP/') else self.start.split(' ', 1)[0]

    @property
    def status(self):
        return int(self.start.split(' ')[1]) if self.start.startswith('SIP/') else None

    @property
    def request_uri(self):
        return self.start.split(' ')[1] if self.method else None

    def reason_problem(self):
        """Why a response's Reason-Phrase is unfit, or None: it must be non-empty UTF-8 text without
        control characters (RFC 3261 section 25.1); garbage there means the sender sent memory it
        did not own."""
        line = self.raw.split(b'\r\n', 1)[0]
        parts = line.split(b' ', 2)
        reason = parts[2] if len(parts) > 2 else b''
        try:
            text = reason.decode('utf-8')
        except UnicodeDecodeError:
            return 'Reason-Phrase is not UTF-8: %r' % reason
        if any(ord(ch) < 32 and ch != '\t' or ord(ch) == 127 for ch in text):
            return 'Reason-Phrase holds control characters: %r' % reason
        if not text.strip():
            return 'empty Reason-Phrase: %r' % line
        return None

    def header(self, name):
        """Value of the first header called name (case-insensitive), or None."""
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    @property
    def call_id(self):
        return self.header('call-id')

    def uri_of(self, name):
        """The URI inside a From/To header (between <>, or up to the first ';')."""
        v = self.header(name) or ''
        m = re.search(r'<([^>]*)>', v)
        return m.group(1) if m else v.split(';', 1)[0].strip()

    def media_type(self):
        """(type/subtype lowercased, {param: value}) of Content-Type, or (None, {})."""
        v = self.header('content-type')
        if v is None:
            return None, {}
        parts = [p.strip() for p in v.split(';')]
        params = {}
        for p in parts[1:]:
            k, _, val = p.partition('=')
            params[k.strip().lower()] = val.strip().strip('"')
        return parts[0].lower(), params

    def summary(self):
        return '%s %s [%s %d bytes body] ci=%s' % (self.direction, self.start, self.transport,
                                                    len(self.body), self.call_id)


SEP = re.compile(rb'^-{20,} (\S+ \S+)\n(UDP|TCP|TLS|SCTP) message (received|sent) [\[(]?(\d+)\]? bytes\)? ?:\n\n',
                 re.M)


def parse_trace(data):
    """Every message of a sipp -trace_msg file: SipMessage objects in file order.
    Format: a dashed line with a time stamp, `UDP message received [N] bytes :` (or
    `TCP message sent (N bytes):`), an empty line, then the N bytes of the message."""
    out = []
    pos = 0
    while True:
        m = SEP.search(data, pos)
        if not m:
            break
        n = int(m.group(4))
        raw = data[m.end():m.end() + n]
        if len(raw) < n:      # the rest is not written yet
            break
        out.append(SipMessage(raw, m.group(3).decode(), m.group(2).decode(), m.group(1).decode()))
        pos = m.end() + n
    return out


class SipTrace:
    """The messages a sipp process logged with -trace_msg -message_file PATH."""

    def __init__(self, path, log):
        self.path, self.log = path, log

    def messages(self):
        try:
            with open(self.path, 'rb') as f:
                return parse_trace(f.read())
        except FileNotFoundError:
            return []

    def mark(self):
        """Number of messages so far; pass as start= to look only at what arrives after now."""
        return len(self.messages())

    def received(self, start=0, method='MESSAGE'):
        return [m for m in self.messages()[start:] if m.direction == 'received' and m.method == method]

    async def expect_msg(self, pred, within, start=0, what='a matching message', abort=None):
        """Wait until a message of the trace (from index start on; requests and responses, received
        and sent) satisfies pred; return (index, message). abort: as for expect."""
        deadline = time.monotonic() + within
        self.log('sip: expect %s in %s within %.1fs' % (what, os.path.basename(self.path), within))
        while True:
            msgs = self.messages()
            for i, m in enumerate(msgs[start:], start):
                if pred(m):
                    self.log('sip: seen %s' % m.summary())
                    return i, m
            why = abort() if abort else None
            if why:
                raise SipError('%s expected in %s, but %s' % (what, self.path, why))
            if time.monotonic() >= deadline:
                seen = [m.summary() for m in msgs[start:]]
                raise SipError('%s expected in %s within %.1fs; saw %d: %s'
                               % (what, self.path, within, len(seen), '; '.join(seen[-3:]) or 'none'))
            await asyncio.sleep(POLL)

    async def expect(self, pred, within, start=0, what='a matching MESSAGE', method='MESSAGE', abort=None):
        """Wait until a received request (from index start on) satisfies pred; return it.
        abort: a callable polled meanwhile; a non-empty string from it ends the wait at once with
        that reason (e.g. the XMPP sender got an error, so nothing will arrive)."""
        deadline = time.monotonic() + within
        self.log('sip: expect %s in %s within %.1fs' % (what, os.path.basename(self.path), within))
        while True:
            for m in self.received(start, method):
                if pred(m):
                    self.log('sip: seen %s' % m.summary())
                    return m
            why = abort() if abort else None
            if why:
                raise SipError('%s expected in %s, but %s' % (what, self.path, why))
            if time.monotonic() >= deadline:
                seen = [m.summary() for m in self.received(start, method)]
                raise SipError('%s expected in %s within %.1fs; saw %d: %s'
                               % (what, self.path, within, len(seen), '; '.join(seen[-3:]) or 'none'))
            await asyncio.sleep(POLL)


class LogFile:
    """A peer's text log, read from a mark on."""

    def __init__(self, path, log):
        self.path, self.log = path, log

    def lines(self):
        try:
            with open(self.path, 'rb') as f:
                return f.read().decode('utf-8', errors='replace').splitlines()
        except FileNotFoundError:
            return []

    def mark(self):
        return len(self.lines())

    def grep(self, regex, start=0):
        rx = re.compile(regex)
        return [s for s in self.lines()[start:] if rx.search(s)]

    async def expect(self, regex, within, start=0):
        deadline = time.monotonic() + within
        self.log('log: expect /%s/ in %s within %.1fs' % (regex, os.path.basename(self.path), within))
        while True:
            found = self.grep(regex, start)
            if found:
                self.log('log: seen %s' % found[0].strip())
                return found[0]
            if time.monotonic() >= deadline:
                raise SipError('no line matching /%s/ in %s within %.1fs' % (regex, self.path, within))
            await asyncio.sleep(POLL)


# ---------------------------------------------------------------------------------------------
# the peers

def tls_dir(peers_dir):
    """Where the run's test certificates live (test/tls/make-certs.sh): Kamailio's and the gateway's."""
    return os.path.join(peers_dir, 'tls')


async def make_certs(peers_dir, log, within=20.0):
    """S4: fresh test certificates in tls_dir(peers_dir), unless this run made them already."""
    d = tls_dir(peers_dir)
    if os.path.exists(os.path.join(d, 'untrusted.test.key')):
        return d
    script = os.path.join(HERE, '..', 'tls', 'make-certs.sh')
    proc = await asyncio.create_subprocess_exec('bash', script, d, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), within)
    text = out.decode(errors='replace').strip()
    log('make-certs.sh %s -> rc=%d %s' % (d, proc.returncode, text))
    if proc.returncode != 0:
        raise SipError('make-certs.sh failed (rc=%d): %s' % (proc.returncode, text.splitlines()[-1] if text else ''))
    return d


async def run_script(script, action, peers_dir, log, within, *args, env=None):
    """Run a peer recipe (test/e2e/peers/NAME.sh ACTION); its output goes to the run log.
    Raises SipError on a non-zero exit or after `within` seconds."""
    e = dict(os.environ, PEERS=peers_dir, **(env or {}))
    proc = await asyncio.create_subprocess_exec(
        os.path.join(HERE, 'peers', script), action, *args, env=e, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    done = asyncio.ensure_future(proc.communicate())
    try:
        out, _ = await asyncio.wait_for(asyncio.shield(done), within)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise SipError('%s %s: no result within %.0fs' % (script, action, within)) from None
    except asyncio.CancelledError:
        await asyncio.wait_for(done, within)    # let a half-started peer finish starting, so stop finds it
        raise
    text = out.decode(errors='replace').strip()
    log('%s %s -> rc=%d %s' % (script, action, proc.returncode, text))
    if proc.returncode != 0:
        raise SipError('%s %s failed (rc=%d): %s' % (script, action, proc.returncode,
                                                     text.splitlines()[-1] if text else 'no output'))
    return text


class Sipp:
    """A long-running sipp UAS (answers every MESSAGE with `status` `phrase`, 200 OK unless told, and
    traces it) in its own process group."""

    def __init__(self, name, ip, port, transport, workdir, log, status=200, phrase='OK', scenario_file=None):
        self.name, self.ip, self.port, self.transport, self.log = name, ip, port, transport, log
        self.status, self.phrase = status, phrase
        self.scenario_file = scenario_file     # another UAS scenario of sipp/, taken as is
        self.trace = SipTrace(os.path.join(workdir, name + '.msg'), log)
        self.out_path = os.path.join(workdir, name + '.out')
        self.logs = os.path.join(workdir, name + '.log')
        self.errors = os.path.join(workdir, name + '.err')
        self.pid_path = os.path.join(workdir, name + '.pid')
        self.proc = None

    def scenario(self):
        """uas_message.xml, or for another status than 200 a copy answering that (sipp takes a response
        code only as a literal number)."""
        if self.scenario_file:
            return os.path.join(SIPP_DIR, self.scenario_file)
        sf = os.path.join(SIPP_DIR, 'uas_message.xml')
        if (self.status, self.phrase) == (200, 'OK'):
            return sf
        with open(sf) as f:
            text = f.read()
        if 'SIP/2.0 200 OK\n' not in text:
            raise SipError('no "SIP/2.0 200 OK" line to rewrite in %s' % sf)
        copy = os.path.join(os.path.dirname(self.trace.path), self.name + '.xml')
        with open(copy, 'w') as f:
            f.write(text.replace('SIP/2.0 200 OK\n', 'SIP/2.0 %d %s\n' % (self.status, self.phrase)))
        return copy

    async def start(self, within=5.0):
        if not os.access('/usr/bin/sipp', os.X_OK):
            raise SipError('sipp is not installed (Debian package sip-tester)')
        self.log('sipp %s: UAS on %s:%d/%s %s' % (self.name, self.ip, self.port, self.transport,
                                                   self.scenario_file or 'answering %d %s' % (self.status, self.phrase)))
        out = open(self.out_path, 'wb')
        self.proc = await asyncio.create_subprocess_exec(
            'sipp', '-sf', self.scenario(), '-i', self.ip, '-p', str(self.port),
            '-t', self.transport, '-nostdin', '-trace_msg', '-message_file', self.trace.path,
            '-trace_logs', '-log_file', self.logs, '-trace_err', '-error_file', self.errors,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True)
        out.close()
        with open(self.pid_path, 'w') as f:     # for stop_leftovers after an interrupted run
            f.write('%d\n' % self.proc.pid)
        proto = '-Hlun' if self.transport.startswith('u') else '-Hltn'
        deadline = time.monotonic() + within
        while True:
            p = await asyncio.create_subprocess_exec('ss', proto, 'src %s:%d' % (self.ip, self.port),
                                                     stdout=asyncio.subprocess.PIPE)
            listing, _ = await p.communicate()
            if listing.strip():
                return
            if self.proc.returncode is not None:
                raise SipError('sipp %s exited (status %d) before binding %s:%d (see %s)'
                               % (self.name, self.proc.returncode, self.ip, self.port, self.out_path))
            if time.monotonic() >= deadline:
                raise SipError('sipp %s did not bind %s:%d within %.0fs (see %s)'
                               % (self.name, self.ip, self.port, within, self.out_path))
            await asyncio.sleep(POLL)

    async def stop(self):
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(self.proc.wait(), 3)
        except asyncio.TimeoutError:
            os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        self.log('sipp %s: stopped (status %s)' % (self.name, self.proc.returncode))
        os.unlink(self.pid_path)


class SipResult:
    """What a sipp UAC saw: exit status, every message it traced, the final response."""

    def __init__(self, rc, messages, trace_path, out_path):
        self.rc, self.messages, self.trace_path, self.out_path = rc, messages, trace_path, out_path
        finals = [m for m in messages if m.direction == 'received' and m.status and m.status >= 200]
        self.final = finals[-1] if finals else None

    @property
    def status(self):
        return self.final.status if self.final else None


ANSI = re.compile(r'\x1b\[[0-9;]*m')


class Baresip:
    """baresip (test/e2e/peers/baresip.sh) as a SIP user registered at Kamailio: it PUBLISHes its own
    presence there and watches the contacts it was started with (SUBSCRIBE through Kamailio). Commands
    go over its ctrl_tcp socket; what it prints (without colour codes) is in its run.log."""

    def __init__(self, name, user, sip_port, ctrl_port, watched, peers_dir, log):
        self.name, self.user, self.sip_port, self.ctrl_port = name, user, sip_port, ctrl_port
        self.watched, self.peers_dir, self.log = list(watched), peers_dir, log
        self.run_log = BaresipLog(os.path.join(peers_dir, 'baresip', name, 'run.log'), log)
        self.started = False

    async def start(self):
        await run_script('baresip.sh', 'start', self.peers_dir, self.log, 20, self.name, self.user,
                         str(self.sip_port), str(self.ctrl_port), *self.watched)
        self.started = True

    async def stop(self):
        if self.started:
            self.started = False
            await run_script('baresip.sh', 'stop', self.peers_dir, self.log, 15, self.name)

    async def command(self, command, params='', within=3.0):
        """Send one ctrl_tcp command (netstring-framed JSON); return its response (a dict), which must
        say ok."""
        import json
        token = 'e2e-%d' % time.monotonic_ns()
        msg = json.dumps({'command': command, 'params': params, 'token': token}).encode()
        self.log('baresip %s: command %s %s' % (self.name, command, params))
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection('127.0.0.1', self.ctrl_port), within)
        except (OSError, asyncio.TimeoutError) as e:
            raise SipError('baresip %s: ctrl_tcp 127.0.0.1:%d: %s' % (self.name, self.ctrl_port, e)) from None
        try:
            writer.write(str(len(msg)).encode() + b':' + msg + b',')
            await writer.drain()
            buf = b''
            deadline = time.monotonic() + within
            while True:
                while b':' in buf:
                    n, rest = buf.split(b':', 1)
                    if not n.isdigit() or len(rest) < int(n) + 1:
                        break
                    body, buf = rest[:int(n)], rest[int(n) + 1:]
                    answer = json.loads(body)
                    if answer.get('response') and answer.get('token') == token:
                        self.log('baresip %s: %s -> %s' % (self.name, command, answer))
                        if not answer.get('ok'):
                            raise SipError('baresip %s: command %s failed: %s' % (self.name, command, answer))
                        return answer
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SipError('baresip %s: no answer to %s within %.0fs' % (self.name, command, within))
                try:
                    data = await asyncio.wait_for(reader.read(65536), left)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    raise SipError('baresip %s: ctrl_tcp closed before answering %s' % (self.name, command))
                buf += data
        finally:
            writer.close()


    async def contact_status(self, aor):
        """What baresip shows for the contact aor (its `contacts` command): Unknown, Online, Offline or
        Busy (baresip 1.0 has no other; it takes <rpid:away/> for Offline, <rpid:busy/> for Busy)."""
        answer = await self.command('contacts')
        for line in ANSI.sub('', answer.get('data', '')).splitlines():
            if '<sip:%s>' % aor in line:
                return line.replace('>', ' ', 1).split()[0] if line.startswith('>') else line.split()[0]
        raise SipError('baresip %s does not list <sip:%s>: %r' % (self.name, aor, answer.get('data')))

    async def expect_contact_status(self, aor, status, within):
        """Wait until baresip shows `status` for the contact aor (asking every 50 ms); return the
        statuses seen on the way."""
        deadline = time.monotonic() + within
        seen = []
        while True:
            now = await self.contact_status(aor)
            if not seen or seen[-1] != now:
                seen.append(now)
            if now == status:
                return seen
            if time.monotonic() >= deadline:
                raise SipError('baresip %s shows <sip:%s> as %s, expected %s within %.0fs (seen: %s; log %s)'
                               % (self.name, aor, now, status, within, ' -> '.join(seen), self.run_log.path))
            await asyncio.sleep(POLL)


class BaresipLog(LogFile):
    """baresip's run.log without its ANSI colour codes."""

    def lines(self):
        return [ANSI.sub('', line) for line in super().lines()]


class UacRun:
    """A sipp UAC running in the background (SipPeers.uac_start)."""

    def __init__(self, name, proc, trace, out_path, within, log):
        self.name, self.proc, self.trace, self.out_path, self.within, self.log = name, proc, trace, out_path, within, log

    @property
    def running(self):
        return self.proc.returncode is None

    def rc(self):
        return self.proc.returncode

    async def wait(self, within=None):
        """Wait for sipp to end (its own -timeout bounds it; 5 s more here), return SipResult."""
        try:
            rc = await asyncio.wait_for(self.proc.wait(), (within or self.within) + 5)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            await self.kill()
            raise
        r = SipResult(rc, self.trace.messages(), self.trace.path, self.out_path)
        self.log('sipp %s: exit %d, final %s' % (self.name, rc, r.final.start if r.final else 'none'))
        return r

    async def kill(self):
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self.proc.wait()
            self.log('sipp %s: killed' % self.name)


class SipPeers:
    """dnsmasq + Kamailio + the sipp UASes for one run.py invocation."""

    def __init__(self, peers_dir, log):
        self.peers_dir, self.log = peers_dir, log
        self.dir = os.path.join(peers_dir, 'sipp')
        self.started = []          # recipes to stop, in start order
        self.uases = []
        self.bob = None
        self.failover = None
        self.kamailio_log = LogFile(os.path.join(peers_dir, 'kamailio', 'kamailio.log'), log)
        self.dns_log = LogFile(os.path.join(peers_dir, 'dns', 'dnsmasq.log'), log)
        self._uac_n = 0
        self.start_time = None
        self.uacs = []             # every UacRun, killed at stop if still running
        self.baresips = []         # Baresip instances started on first use

    async def start(self, gateway_stub=False):
        """Start everything and register bob. gateway_stub: also run a sipp UAS on 127.0.0.1:5080
        in place of the gateway (for checking the peers without xsgw)."""
        t0 = time.monotonic()
        os.makedirs(self.dir, exist_ok=True)
        await make_certs(self.peers_dir, self.log)
        await run_script('dns.sh', 'start', self.peers_dir, self.log, 15)
        self.started.append('dns.sh')
        await run_script('kamailio.sh', 'start', self.peers_dir, self.log, 20)
        self.started.append('kamailio.sh')
        self.bob = Sipp('bob', *BOB_UAS, 'u1', self.dir, self.log)
        self.failover = Sipp('failover', *FAILOVER_UAS, 'u1', self.dir, self.log)
        self.uases = [self.bob, self.failover]
        if gateway_stub:
            self.gateway_stub = Sipp('gateway-stub', '127.0.0.1', 5080, 'u1', self.dir, self.log)
            self.uases.append(self.gateway_stub)
        for u in self.uases:
            await u.start()
        await self.register('bob', '%s:%d' % BOB_UAS)
        self.start_time = time.monotonic() - t0

    async def registered_uas(self, user, ip, port, status, phrase):
        """A further sipp UAS on ip:port (UDP) answering every MESSAGE `status` `phrase`, registered at
        Kamailio as user@simple.test; started on first use, stopped with the others. Returns the Sipp."""
        for u in self.uases:
            if u.name == user:
                return u
        u = Sipp(user, ip, port, 'u1', self.dir, self.log, status=status, phrase=phrase)
        self.uases.append(u)
        await u.start()
        await self.register(user, '%s:%d' % (ip, port))
        return u

    async def uas(self, name, ip, port, scenario_file):
        """A further sipp UAS on ip:port (UDP) running sipp/scenario_file, not registered; started on
        first use, stopped with the others. Returns the Sipp."""
        for u in self.uases:
            if u.name == name:
                return u
        u = Sipp(name, ip, port, 'u1', self.dir, self.log, scenario_file=scenario_file)
        self.uases.append(u)
        await u.start()
        return u

    async def baresip(self, name, user, sip_port, ctrl_port, watched=()):
        """baresip NAME as user@simple.test (127.0.0.1:sip_port, ctrl_tcp on ctrl_port), watching the
        AORs in `watched`; started (and registered) on first use, stopped with the others."""
        for b in self.baresips:
            if b.name == name:
                return b
        b = Baresip(name, user, sip_port, ctrl_port, watched, self.peers_dir, self.log)
        self.baresips.append(b)
        await b.start()
        return b

    async def register(self, user, contact, expires=3600):
        r = await self.uac('uac_register.xml', '%s:%d' % KAMAILIO, (200,), name='register-' + user,
                           user=user, domain=SIP_DOMAIN, contact=contact, expires=str(expires))
        if r.status != 200:
            raise SipError('REGISTER %s@%s: status %s (see %s)' % (user, SIP_DOMAIN, r.status, r.out_path))

    async def stop_leftovers(self):
        """Stop what an interrupted earlier run left in peers_dir: sipp UASes, Kamailio, dnsmasq."""
        for pid_path in glob.glob(os.path.join(self.dir, '*.pid')):
            with open(pid_path) as f:
                pid = int(f.read())
            try:
                with open('/proc/%d/cmdline' % pid, 'rb') as f:
                    ours = f.read().startswith(b'sipp\0')
                if ours:
                    os.killpg(pid, signal.SIGKILL)
                    self.log('sipp pid %d left by an earlier run: killed' % pid)
            except (FileNotFoundError, ProcessLookupError):
                pass
            os.unlink(pid_path)
        for d in glob.glob(os.path.join(self.peers_dir, 'baresip', '*', '')):
            name = os.path.basename(os.path.dirname(d))
            if re.match(r'^[\w-]+$', name):
                await run_script('baresip.sh', 'stop', self.peers_dir, self.log, 15, name)
        for script in ('kamailio.sh', 'dns.sh'):
            await run_script(script, 'stop', self.peers_dir, self.log, 15)

    async def stop(self):
        for run in self.uacs:
            try:
                await run.kill()
            except Exception as e:    # keep going
                self.log('sipp %s: kill failed: %r' % (run.name, e))
        for b in self.baresips:
            try:
                await b.stop()
            except SipError as e:
                self.log(str(e))
        for u in self.uases:
            try:
                await u.stop()
            except Exception as e:    # keep going: the recipes must be stopped too
                self.log('sipp %s: stop failed: %r' % (u.name, e))
        for script in reversed(self.started):
            try:
                await run_script(script, 'stop', self.peers_dir, self.log, 15)
            except SipError as e:
                self.log(str(e))
        self.started = []

    def _uac_args(self, scenario, target, expect, name, transport, within, local_ip, replace, variables, extra=()):
        """The scenario copy (final statuses rewritten to `expect` unless None; each key of `replace`
        put in place of its token) and sipp's command line."""
        self._uac_n += 1
        name = '%02d-%s' % (self._uac_n, name or scenario.rsplit('.', 1)[0])
        sf = os.path.join(self.dir, name + '.xml')
        with open(os.path.join(SIPP_DIR, scenario)) as f:
            text = f.read()
        if expect is not None:
            text = expect_statuses(text, expect)
        for token, value in (replace or {}).items():
            if token not in text:
                raise SipError('no %s to replace in %s' % (token, scenario))
            text = text.replace(token, value)
        with open(sf, 'w') as f:
            f.write(text)
        trace = os.path.join(self.dir, name + '.msg')
        out_path = os.path.join(self.dir, name + '.out')
        args = ['sipp', '-sf', sf, '-i', local_ip, '-t', transport, '-m', '1', '-nostdin',
                '-timeout', '%ds' % int(within), '-timeout_error', '-trace_msg', '-message_file', trace, *extra]
        for k, v in variables.items():
            args += ['-set', k, v]
        args.append(target)
        self.log('sipp %s: %s' % (name, ' '.join(repr(a) if ' ' in a or '\n' in a else a for a in args)))
        return name, args, trace, out_path

    async def uac(self, scenario, target, expect, name=None, transport='u1', within=5.0, local_ip='127.0.0.1',
                  replace=None, **variables):
        """Run one sipp UAC scenario against target ("ip:port") with -set variables; its copy expects
        one of the final statuses in `expect`. Returns SipResult (never raises on a status mismatch:
        the caller checks r.status)."""
        run = await self.uac_start(scenario, target, expect, name, transport, within, local_ip, replace, **variables)
        return await run.wait()

    async def uac_start(self, scenario, target, expect=None, name=None, transport='u1', within=20.0,
                        local_ip='127.0.0.1', replace=None, extra=(), **variables):
        """Start one sipp UAC scenario in the background (bounded by sipp's -timeout `within`) and
        return its UacRun at once: the scenario reads its trace while it runs, then awaits wait().
        extra: more sipp options (e.g. -aa)."""
        name, args, trace, out_path = self._uac_args(scenario, target, expect, name, transport, within,
                                                     local_ip, replace, variables, extra)
        out = open(out_path, 'wb')
        try:
            proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                                                        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        finally:
            out.close()
        run = UacRun(name, proc, SipTrace(trace, self.log), out_path, within, self.log)
        self.uacs.append(run)
        return run

    async def message(self, target, ruri, from_uri, to_uri, ctype, body, expect=(202,), transport='u1', **kw):
        """Send one MESSAGE with sipp (uac_message.xml); body is str (sent as UTF-8) or bytes."""
        if isinstance(body, bytes):
            body = body.decode('utf-8')
        variables = {'ruri': ruri, 'from': from_uri, 'to': to_uri, 'ctype': ctype, 'body': body}
        return await self.uac('uac_message.xml', target, expect, transport=transport, **variables, **kw)


def expect_statuses(text, statuses):
    """Rewrite the scenario's final `<recv response="NNN" .../>` (the last recv) so that any status in
    `statuses` ends it: sipp matches response codes only as literal numbers."""
    m = list(re.finditer(r'<recv response="(\d+)"( rtd="true")?/>', text))
    if not m:
        raise SipError('no <recv response=.../> to rewrite in the scenario')
    last = m[-1]
    statuses = list(statuses)
    block = ''.join('<recv response="%d" optional="true" rtd="true" next="final"/>\n  ' % s for s in statuses[:-1])
    block += '<recv response="%d" rtd="true"/>\n  <label id="final"/>' % statuses[-1]
    return text[:last.start()] + block + text[last.end():]
