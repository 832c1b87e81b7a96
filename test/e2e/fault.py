#!/usr/bin/python3
"""The fault test (issue 5 part 1, STANDARDS D and E): thousands of messages each way through the real
xsgw binary while its peers fail, and a ledger that must balance exactly for every message.

usage: /usr/bin/python3 test/e2e/fault.py --xsgw PATH --workdir DIR [--server prosody] [--scale 1.0]
           [--phase NAME ...]

Peers (all on loopback, through the same recipes as run.py): the XMPP server (default Prosody),
dnsmasq (fault.test -> 127.0.0.9:5060, *.dnsfault.test -> 127.0.0.9), a sipp UAS on 127.0.0.9:5060 as
the SIP target, sipp UACs as SIP senders, slixmpp clients as XMPP senders and receivers, and a DNS proxy
of this file between xsgw and dnsmasq that can fail (SERVFAIL) or drop (time out) every query.

Phases, each a few seconds of steady traffic with a fault in the middle:
  sip_target   XMPP->SIP while the SIP target is stopped and started again
  xmpp_server  both ways while the XMPP server is killed and started again (the client logs in again)
  stall        SIP->XMPP at 1500/s while the XMPP server reads nothing for 8 s (SIGSTOP), memory sampled
  dns          XMPP->SIP, one new domain per message, while DNS answers SERVFAIL, then nothing at all
  sigterm      both ways while xsgw gets SIGTERM (it must drain and exit 0), then starts again

The ledger of a phase, per message id (the id is the body text on both sides):
  XMPP->SIP  delivered: the SIP target answered the MESSAGE 200 (its sipp trace shows the 200 sent);
             errored: the sender received an error stanza with the message's id (from xsgw, or from the
             XMPP server once xsgw is gone).
  SIP->XMPP  delivered: the XMPP client received it; errored: the sender's final response was not 2xx,
             or it was 202 and a bounce notice (M12) came back to the sender's own address
             (sip:TAG-N@fault.test, i.e. the SIP target).
  Either way, a message that never reached xsgw (a SIP request sent while it was not running, a
  stanza the killed XMPP server never handed on) is counted apart as `not entered`, and only when
  xsgw's log never names it.
Each phase must end with sent = delivered + errored (+ not entered), no message both delivered and
errored, none delivered twice. Each prints `# ledger NAME: ...` with its counts, then PASS or FAIL.
Nothing sleeps to synchronise: traffic is paced by the clock (a measurement of rate), and every wait is
for an event with a deadline.
"""
import argparse
import asyncio
import glob
import os
import re
import shutil
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import (COMPONENT, MAIN, SECRET, SERVER_IPS, XMPP_DOMAIN, Fail, RunLog, Server, Xsgw, check,  # noqa: E402
                 log_in, resume)
from sip import Sipp, SipTrace, run_script, SipError, SIPP_DIR  # noqa: E402

TARGET = ('127.0.0.9', 5060)         # fault.test's SRV target and every *.dnsfault.test
GATEWAY_PORT = 5080                  # the fault instance's [sip] listen on 127.0.0.1
DNS_PROXY = ('127.0.0.55', 5354)     # the fault instance's [dns] servers
DNSMASQ = ('127.0.0.53', 53)
OUTCOME_DEADLINE = 45.0
# The main instance's link settings, but a keepalive that outlasts the stall phase's 8 s.
LINK = dict(MAIN, keepalive_interval=10, keepalive_timeout=10)
IN_DOUBT = ' (not confirmed: may have been delivered)'              # every message has an outcome by then (SIP Timer F is 32 s)


class DnsProxy(asyncio.DatagramProtocol):
    """UDP DNS between xsgw and dnsmasq: mode 'pass' relays, 'servfail' answers every query SERVFAIL,
    'drop' answers nothing (the query times out). Counts what it did per mode."""

    def __init__(self, log):
        self.mode, self.log = 'pass', log
        self.counts = {}
        self.transport = None
        self.upstream = None
        self.pending = {}        # upstream query id -> (client address, original id)
        self._next = 1

    def connection_made(self, transport):
        self.transport = transport

    def set_mode(self, mode):
        self.log('dns proxy: %s' % mode)
        self.mode = mode

    def datagram_received(self, data, addr):
        if len(data) < 12:
            return
        self.counts[self.mode] = self.counts.get(self.mode, 0) + 1
        if self.mode == 'drop':
            return
        if self.mode == 'servfail':
            flags = 0x8000 | (data[2] & 0x79) << 8 | 0x80 | 2   # QR, opcode+RD kept, RA, RCODE 2
            self.transport.sendto(data[:2] + flags.to_bytes(2, 'big') + data[4:6] + b'\0' * 6
                                  + self._question(data), addr)
            return
        qid = self._next
        self._next = self._next % 65535 + 1
        self.pending[qid] = (addr, data[:2])
        self.upstream.sendto(qid.to_bytes(2, 'big') + data[2:])

    @staticmethod
    def _question(data):
        """The question section of a query with one question (as it came)."""
        i = 12
        while i < len(data) and data[i] != 0:
            i += 1 + data[i]
        return data[12:i + 5]

    def answer(self, data):
        if len(data) < 12:
            return
        entry = self.pending.pop(int.from_bytes(data[:2], 'big'), None)
        if entry is not None:
            self.transport.sendto(entry[1] + data[2:], entry[0])


class Upstream(asyncio.DatagramProtocol):
    def __init__(self, proxy):
        self.proxy = proxy

    def datagram_received(self, data, addr):
        self.proxy.answer(data)


class Ledger:
    """Outcomes of one phase's messages, by id."""

    def __init__(self, name):
        self.name = name
        self.sent = []              # ids in order
        self.delivered = {}         # id -> times
        self.errored = {}           # id -> why (first)
        self.not_entered = set()

    def clear(self):
        """Forget the outcomes (not what was sent): each collection reads them afresh."""
        self.delivered, self.errored, self.not_entered = {}, {}, set()

    def deliver(self, i):
        self.delivered[i] = self.delivered.get(i, 0) + 1

    def error(self, i, why):
        self.errored.setdefault(i, why)

    def problems(self):
        sent = set(self.sent)
        lost = [i for i in self.sent if i not in self.delivered and i not in self.errored
                and i not in self.not_entered]
        both = [i for i in self.sent if i in self.delivered and i in self.errored
                and not self.errored[i].endswith(IN_DOUBT)]
        twice = [i for i in self.sent if self.delivered.get(i, 0) > 1]
        strange = sorted((set(self.delivered) | set(self.errored)) - sent)
        out = []
        for what, ids in (('lost (neither delivered nor errored)', lost), ('delivered and errored', both),
                          ('delivered more than once', twice), ('not sent in this phase', strange)):
            if ids:
                out.append('%d %s, e.g. %s' % (len(ids), what, ', '.join(ids[:5])))
        return out

    def summary(self):
        kinds = {}
        for why in self.errored.values():
            kinds[why] = kinds.get(why, 0) + 1
        detail = ', '.join('%s %d' % kv for kv in sorted(kinds.items(), key=lambda kv: -kv[1]))
        doubt = sum(1 for i in self.sent if i in self.delivered and self.errored.get(i, '').endswith(IN_DOUBT))
        if doubt:
            detail += '; delivered although answered as not confirmed: %d' % doubt
        return ('%s: sent %d = delivered %d + errored %d%s%s' % (
            self.name, len(self.sent), sum(1 for i in self.sent if i in self.delivered),
            sum(1 for i in self.sent if i in self.errored and i not in self.delivered),
            ' + not entered %d' % len(self.not_entered) if self.not_entered else '',
            ' (errors: %s)' % detail if detail else ''))

    def settled(self, ids=None):
        return all(i in self.delivered or i in self.errored or i in self.not_entered
                   for i in (ids if ids is not None else self.sent))


def error_text(el):
    for child in el:
        if child.tag.endswith('}error') or child.tag == 'error':
            conds = [c.tag.split('}')[-1] for c in child if not c.tag.endswith('}text')]
            return '%s/%s' % (child.get('type'), conds[0] if conds else '?')
    return 'error'


def body_of(el):
    for child in el:
        if child.tag.split('}')[-1] == 'body':
            return child.text or ''
    return None


class FaultTest:
    def __init__(self, args):
        self.args = args
        self.workdir = os.path.abspath(args.workdir)
        self.peers_dir = os.path.join(self.workdir, 'peers')
        self.scale = args.scale
        self.log = None
        self.server = None
        self.xsgw = None
        self.instances = []
        self.clients = []
        self.targets = []          # every sipp UAS run as the SIP target (one per start)
        self.uacs = []             # (name, proc, trace path)
        self.dns = None
        self.dns_started = False
        self.ledgers = []
        self._alice = None
        self.stopped_pid = None    # a SIGSTOPped server to SIGCONT at teardown

    # ------------------------------------------------------------------ peers
    async def setup(self):
        os.makedirs(self.workdir, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        for pattern in ('xsgw-*.log', 'xsgw-*.toml', 'client-*.log', 'run.log', 'target-*', 'uac-*'):
            for path in glob.glob(os.path.join(self.workdir, pattern)):
                os.unlink(path)
        self.log = RunLog(os.path.join(self.workdir, 'run.log'))
        self.server = Server(self.args.server, self.peers_dir, self.log)
        if os.path.isdir(self.peers_dir):
            await self.server.stop()
            try:
                await run_script('dns.sh', 'stop', self.peers_dir, self.log, 15)
            except SipError:
                pass
            shutil.rmtree(self.peers_dir)
        os.makedirs(self.peers_dir)
        os.chmod(self.peers_dir, 0o755)
        if not os.access('/usr/bin/sipp', os.X_OK):
            raise Fail('sipp is not installed (Debian package sip-tester)')
        print('# %s' % (await self.server.start()).splitlines()[-1], flush=True)
        try:
            await run_script('dns.sh', 'start', self.peers_dir, self.log, 15)
        except SipError as e:
            raise Fail(str(e)) from None
        self.dns_started = True
        loop = asyncio.get_running_loop()
        self.dns = DnsProxy(self.log)
        await loop.create_datagram_endpoint(lambda: self.dns, local_addr=DNS_PROXY)
        up, _ = await loop.create_datagram_endpoint(lambda: Upstream(self.dns), remote_addr=DNSMASQ)
        self.dns.upstream = up
        await self.start_target()
        await self.start_xsgw()

    async def start_target(self):
        t = Sipp('target-%d' % (len(self.targets) + 1), TARGET[0], TARGET[1], 'u1', self.workdir, self.log)
        self.targets.append(t)
        try:
            await t.start()
        except SipError as e:
            raise Fail(str(e)) from None
        return t

    async def start_xsgw(self):
        # No per-sender or per-source limit: the traffic is the test's, at hundreds per second.
        x = Xsgw(self.args.xsgw, self.workdir, 'fault-%d' % (len(self.instances) + 1), self.server.ip,
                 GATEWAY_PORT, SECRET, self.log, sip_extra=['max_requests_per_source = 0'],
                 xmpp_extra=['max_stanzas_per_sender = 0'], dns_server='%s:%d' % DNS_PROXY, **LINK)
        self.instances.append(x)
        self.xsgw = x
        await x.start()
        await x.expect(r'xmpp: link up', 15)
        return x

    async def alice(self):
        """alice@xmpp.test, logged in (again, when the server restarted since)."""
        if self._alice is None or not self._alice.up:
            self._alice = await log_in('alice', self.server, self.workdir, self.clients)
        return self._alice

    async def teardown(self):
        resume(self.stopped_pid)
        for c in self.clients:
            await c.close()
        for name, proc, _ in self.uacs:
            if proc.returncode is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await proc.wait()
        for x in self.instances:
            try:
                await x.stop()
            except Exception as e:
                self.log('%s: stop failed: %r' % (x.name, e))
        for t in self.targets:
            await t.stop()
        if self.dns_started:
            try:
                await run_script('dns.sh', 'stop', self.peers_dir, self.log, 15)
            except SipError as e:
                print('# %s' % e, flush=True)
        try:
            await self.server.stop()
        except Fail as e:
            print('# %s' % e, flush=True)

    # ------------------------------------------------------------------ traffic
    def count(self, n):
        return max(10, int(n * self.scale))

    async def paced(self, ids, rate, send, at=None):
        """Call send(id) for every id at `rate` per second (by the clock); at: {index: coroutine fn}
        run (awaited in the background) when that many have been sent, each after the one before has
        finished (a target's start must not overtake its stop, which may wait 3 s for sipp to go)."""
        t0 = time.monotonic()
        tasks = []

        async def after(previous, action):
            if previous is not None:
                await previous
            await action()

        for k, i in enumerate(ids):
            if at and k in at:
                tasks.append(asyncio.ensure_future(after(tasks[-1] if tasks else None, at[k])))
            due = t0 + k / rate
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)      # pacing by the clock, not a synchronisation
            send(i)
        return tasks

    def xmpp_errors(self, c, ledger, prefix):
        for el in c.messages:
            i = el.get('id') or ''
            if el.get('type') == 'error' and i.startswith(prefix):
                ledger.error(i, 'xmpp ' + error_text(el))

    def target_deliveries(self, ledger, prefix):
        """Ids (bodies) of MESSAGEs the SIP target answered 200, over every run of it."""
        for t in self.targets:
            messages = t.trace.messages()
            answered = {m.call_id for m in messages if m.direction == 'sent' and m.status == 200}
            seen = set()
            for m in messages:
                if m.direction != 'received' or m.method != 'MESSAGE' or m.call_id in seen:
                    continue
                seen.add(m.call_id)    # a retransmission is the same message
                body = m.body.decode('utf-8', 'replace').strip()
                if body.startswith(prefix) and m.call_id in answered:
                    ledger.deliver(body)

    def bounces(self, ledger, tag):
        """M12 bounce notices the SIP target received for sip:TAG-N@fault.test: errored."""
        rx = re.compile(r'^sip:(%s-\d+)@fault\.test' % re.escape(tag))
        for t in self.targets:
            for m in t.trace.messages():
                if m.direction == 'received' and m.method == 'MESSAGE':
                    mm = rx.match(m.request_uri or '')
                    if mm:
                        ledger.error(mm.group(1), 'bounce notice')

    async def settle(self, ledger, collect, within=OUTCOME_DEADLINE):
        """Re-collect outcomes until every message has one or the deadline passes."""
        deadline = time.monotonic() + within
        while True:
            ledger.clear()
            collect()
            if ledger.settled() or time.monotonic() >= deadline:
                return
            await asyncio.sleep(0.2)   # polling files and clients for events, with a deadline

    def finish(self, ledger):
        self.ledgers.append(ledger)
        print('# ledger %s' % ledger.summary(), flush=True)
        self.log('ledger %s' % ledger.summary())
        problems = ledger.problems()
        check(not problems, 'ledger %s does not balance: %s' % (ledger.name, '; '.join(problems)))

    async def uac(self, tag, count, rate):
        """sipp UAC: `count` MESSAGEs to alice at `rate`/s, bodies TAG-1..TAG-count. Returns
        (process, trace path)."""
        name = 'uac-%s' % tag
        trace = os.path.join(self.workdir, name + '.msg')
        out = open(os.path.join(self.workdir, name + '.out'), 'wb')
        args = ['sipp', '-sf', os.path.join(SIPP_DIR, 'uac_message_load.xml'), '-i', '127.0.0.1', '-t', 'u1',
                '-m', str(count), '-r', str(rate), '-nostdin', '-timeout', '60s', '-trace_msg',
                '-message_file', trace, '-set', 'ruri', 'sip:alice*%s@%s' % (XMPP_DOMAIN, COMPONENT),
                '-set', 'tag', tag, '127.0.0.1:%d' % GATEWAY_PORT]
        self.log('sipp %s: %s' % (name, ' '.join(args)))
        proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                                                    stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        out.close()
        self.uacs.append((name, proc, trace))
        return proc, trace

    def uac_outcomes(self, trace, ledger, tag, gateway_logs=()):
        """From the UAC's trace: sent ids and final statuses. A 202 is only the next hop's; a
        non-2xx is an error. Returns {id: status or None}."""
        messages = SipTrace(trace, self.log).messages()
        by_call = {}
        for m in messages:
            if m.direction == 'sent' and m.method == 'MESSAGE':
                body = m.body.decode('utf-8', 'replace').strip()
                by_call.setdefault(m.call_id, body)
        final = {}
        for m in messages:
            if m.direction == 'received' and m.status is not None and m.status >= 200:
                final.setdefault(m.call_id, (m.status, m.start))
        status = {}
        for call, i in by_call.items():
            if i not in ledger.sent:
                ledger.sent.append(i)
            code, line = final.get(call, (None, ''))
            status[i] = code
            if code is not None and code >= 300:
                # D1: the XMPP server went before it confirmed the stanza: it may have been
                # delivered too, which the ledger allows for these alone (and counts them).
                ledger.error(i, 'SIP %d%s' % (code, IN_DOUBT if 'before it confirmed' in line else ''))
        return status

    def sip_to_xmpp_outcomes(self, ledger, trace, tag, receivers):
        """A SIP->XMPP ledger's outcomes: final statuses from the UAC's trace, deliveries at the XMPP
        clients, bounce notices at the SIP target. Returns {id: final status or None}."""
        status = self.uac_outcomes(trace, ledger, tag)
        for c in receivers:
            for el in c.messages:
                b = body_of(el)
                if el.get('type') != 'error' and b and b.startswith(tag + '-'):
                    ledger.deliver(b)
        self.bounces(ledger, tag)
        return status

    # ------------------------------------------------------------------ phases
    async def phase_sip_target(self):
        """XMPP->SIP while the SIP target is stopped, then started again."""
        ledger = Ledger('sip_target')
        alice = await self.alice()
        n, rate = self.count(1500), 500
        ids = ['p1-%d' % k for k in range(1, n + 1)]
        ledger.sent = list(ids)
        to = 'carol*fault.test@' + COMPONENT

        async def stop_target():
            await self.targets[-1].stop()
            self.log('target stopped')

        async def start_target():
            await self.start_target()
            self.log('target started')

        tasks = await self.paced(ids, rate, lambda i: alice.send_message(to, i, '<body>%s</body>' % i),
                                 at={n // 3: stop_target, 2 * n // 3: start_target})
        await asyncio.gather(*tasks)

        def collect():
            self.xmpp_errors(alice, ledger, 'p1-')
            self.target_deliveries(ledger, 'p1-')
        await self.settle(ledger, collect)
        self.finish(ledger)

    async def phase_xmpp_server(self):
        """Both ways while the XMPP server is killed (SIGKILL: no goodbye, whatever it had not yet
        handled is gone with it) and started again; alice logs in again and sends on. An XMPP->SIP
        message that the dying server never handed to xsgw (xsgw's log never names its id) is
        counted as not entered: it was lost before the gateway."""
        ledger = Ledger('xmpp_server sip->xmpp')
        x2s = Ledger('xmpp_server xmpp->sip')
        alice = await self.alice()
        receivers = [alice]
        n, rate = self.count(2000), 400
        proc, trace = await self.uac('p2', n, rate)
        to = 'carol*fault.test@' + COMPONENT

        def send(i):
            c = self._alice
            if c is not None and c.up:      # while alice is logged out, nothing is sent
                c.send_message(to, i, '<body>%s</body>' % i)
                x2s.sent.append(i)
        sender = asyncio.ensure_future(self.paced(['p2x-%d' % k for k in range(1, n + 1)], rate, send))
        # kill the server once a fifth has been relayed; start it again at once
        mark = self.xsgw.mark()
        await self.xsgw.expect(r'bridge: MESSAGE from sip:p2-\d+@fault\.test -> stanza', 30, start=mark,
                               count=n // 5)
        pid = await self.server.pid()
        os.kill(pid, signal.SIGKILL)
        self.log('xmpp server pid %d killed' % pid)
        await self.xsgw.expect(r'xmpp: link down', 10, start=mark)
        await self.server.stop()
        await self.server.start()
        self.log('xmpp server started')
        await self.xsgw.expect(r'xmpp: link up', 15, start=mark)
        receivers.append(await self.alice())
        await sender
        try:
            await asyncio.wait_for(proc.wait(), 90)
        except asyncio.TimeoutError:
            raise Fail('sipp uac-p2 did not end within 90 s') from None

        def collect():
            status = self.sip_to_xmpp_outcomes(ledger, trace, 'p2', receivers)
            for i, s in status.items():
                if s is None:
                    ledger.error(i, 'no final response')   # counted, then reported below
        await self.settle(ledger, collect, within=10)

        seen = set()        # ids xsgw's log names: what entered it
        rx = re.compile(r"id='(p2x-\d+)'")
        for _, text in self.xsgw.lines:
            seen.update(rx.findall(text))

        def collect_x2s():
            for c in receivers:
                self.xmpp_errors(c, x2s, 'p2x-')
            self.target_deliveries(x2s, 'p2x-')
            x2s.not_entered = {i for i in x2s.sent if i not in seen and i not in x2s.delivered
                               and i not in x2s.errored}
        await self.settle(x2s, collect_x2s, within=10)
        silent = [i for i, why in ledger.errored.items() if why == 'no final response']
        self.finish(ledger)
        self.finish(x2s)
        check(not silent, 'SIP requests never answered: %d, e.g. %s' % (len(silent), ', '.join(silent[:5])))

    def rss_mib(self):
        """Resident memory of the running xsgw (VmRSS), MiB."""
        with open('/proc/%d/status' % self.xsgw.proc.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    async def phase_stall(self):
        """Sustained overload: SIP->XMPP at 1500/s while the XMPP server stops reading (SIGSTOP)
        for 8 s, then goes on (SIGCONT). Held transactions are bounded (5 s confirmation timeout,
        10 000 at most), the link's write buffer too; xsgw's resident memory is sampled every
        0.5 s and printed (a figure, not a check). The ledger must balance."""
        ledger = Ledger('stall')
        alice = await self.alice()
        n, rate = self.count(18000), 1500
        proc, trace = await self.uac('p5', n, rate)
        mark = self.xsgw.mark()
        await self.xsgw.expect(r'bridge: MESSAGE from sip:p5-\d+@fault\.test -> stanza', 30, start=mark,
                               count=n // 12)
        pid = await self.server.pid()
        samples = []
        t0 = time.monotonic()

        async def sample_for(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                samples.append((time.monotonic() - t0, self.rss_mib()))
                await asyncio.sleep(0.5)    # the sampling period of a measurement
        os.kill(pid, signal.SIGSTOP)
        self.stopped_pid = pid
        self.log('xmpp server pid %d stopped (SIGSTOP)' % pid)
        await sample_for(8.0)
        os.kill(pid, signal.SIGCONT)
        self.stopped_pid = None
        self.log('xmpp server pid %d continued' % pid)
        while proc.returncode is None:
            samples.append((time.monotonic() - t0, self.rss_mib()))
            try:
                await asyncio.wait_for(proc.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
            if time.monotonic() - t0 > 90:
                raise Fail('sipp uac-p5 did not end within 90 s')
        samples.append((time.monotonic() - t0, self.rss_mib()))
        print('# memory stall (xsgw VmRSS, s after SIGSTOP: MiB; SIGCONT at 8 s): %s'
              % ', '.join('%.1f: %.1f' % sm for sm in samples), flush=True)
        self.log('memory: %r' % samples)

        def collect():
            status = self.sip_to_xmpp_outcomes(ledger, trace, 'p5', [alice])
            for i, st in status.items():
                if st is None:
                    ledger.error(i, 'no final response')
        await self.settle(ledger, collect, within=15)
        silent = [i for i, why in ledger.errored.items() if why == 'no final response']
        self.finish(ledger)
        check(not silent, 'SIP requests never answered: %d, e.g. %s' % (len(silent), ', '.join(silent[:5])))

    async def phase_dns(self):
        """XMPP->SIP, each message to a domain of its own (no cache can answer), while the DNS proxy
        answers every query SERVFAIL, then drops every query (they time out); once every message
        has its outcome the proxy relays again and a last tenth must all be delivered."""
        ledger = Ledger('dns')
        alice = await self.alice()
        n, rate = self.count(900), 300
        ids = ['p3-%d' % k for k in range(1, n + 1)]
        after = ['p3-%d' % k for k in range(n + 1, n + 1 + max(10, n // 10))]
        ledger.sent = list(ids)

        async def mode(m):
            self.dns.set_mode(m)

        def send(i):
            alice.send_message('carol*%s.dnsfault.test@%s' % (i, COMPONENT), i, '<body>%s</body>' % i)

        def collect():
            self.xmpp_errors(alice, ledger, 'p3-')
            self.target_deliveries(ledger, 'p3-')
        tasks = await self.paced(ids, rate, send, at={n // 3: lambda: mode('servfail'),
                                                      2 * n // 3: lambda: mode('drop')})
        await asyncio.gather(*tasks)
        await self.settle(ledger, collect)     # the dropped ones time out meanwhile
        self.dns.set_mode('pass')
        ledger.sent += after
        await self.paced(after, rate, send)
        await self.settle(ledger, collect)
        self.log('dns proxy counts: %r' % self.dns.counts)
        self.finish(ledger)
        check(self.dns.counts.get('servfail') and self.dns.counts.get('drop'),
              'the DNS faults were not exercised: %r' % self.dns.counts)
        missing = [i for i in after if i not in ledger.delivered]
        check(not missing, 'after DNS came back, %d of %d not delivered, e.g. %s (%s)'
              % (len(missing), len(after), ', '.join(missing[:3]),
                 ', '.join(ledger.errored.get(i, '?') for i in missing[:3])))

    async def phase_sigterm(self):
        """Both ways while xsgw is stopped with SIGTERM (it must drain and exit 0 within 10 s), then
        started again."""
        x2s = Ledger('sigterm xmpp->sip')
        s2x = Ledger('sigterm sip->xmpp')
        alice = await self.alice()
        n, rate = self.count(900), 300
        ids = ['p4x-%d' % k for k in range(1, n + 1)]
        x2s.sent = list(ids)
        proc, trace = await self.uac('p4s', n, rate)
        old = self.xsgw
        result = {}

        async def stop_and_start():
            t0 = time.monotonic()
            result['stop'] = await old.stop(within=10)
            self.log('%s: SIGTERM -> %r after %.2fs' % (old.name, result['stop'], time.monotonic() - t0))
            await self.start_xsgw()

        to = 'carol*fault.test@' + COMPONENT
        tasks = await self.paced(ids, rate, lambda i: alice.send_message(to, i, '<body>%s</body>' % i),
                                 at={n // 3: stop_and_start})
        await asyncio.gather(*tasks)
        try:
            await asyncio.wait_for(proc.wait(), 90)
        except asyncio.TimeoutError:
            raise Fail('sipp uac-p4s did not end within 90 s') from None
        rc, took = result['stop']
        check(rc == 0, '%s: exit status %r %.1fs after SIGTERM, expected 0' % (old.name, rc, took))
        gateway_lines = [text for inst in self.instances for _, text in inst.lines]

        def collect():
            x2s.clear()
            s2x.clear()
            self.xmpp_errors(alice, x2s, 'p4x-')
            self.target_deliveries(x2s, 'p4x-')
            status = self.sip_to_xmpp_outcomes(s2x, trace, 'p4s', [alice])
            for i, st in status.items():
                if st is None and not any(('sip:%s@fault.test' % i) in t for t in gateway_lines):
                    s2x.not_entered.add(i)
        await self.settle(x2s, collect)
        await self.settle(s2x, collect, within=5)
        self.finish(x2s)
        self.finish(s2x)

    async def run_phase(self, name):
        t0 = time.monotonic()
        try:
            await getattr(self, 'phase_' + name)()
        except Fail as e:
            print('FAIL %s: %s (%.1fs)' % (name, e, time.monotonic() - t0), flush=True)
            return False
        except Exception:
            print('FAIL %s: %s' % (name, traceback.format_exc().strip().replace('\n', ' | ')), flush=True)
            return False
        print('PASS %s (%.1fs)' % (name, time.monotonic() - t0), flush=True)
        return True


PHASES = ['sip_target', 'xmpp_server', 'stall', 'dns', 'sigterm']


async def run(args):
    t = FaultTest(args)
    ok = False
    try:
        try:
            await t.setup()
        except Fail as e:
            print('FAIL setup: %s' % e, flush=True)
            return 1
        results = [await t.run_phase(p) for p in (args.phase or PHASES)]
        ok = all(results)
        return 0 if ok else 1
    finally:
        await t.teardown()
        if not ok:
            print('# logs: %s' % t.workdir, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--xsgw', required=True)
    p.add_argument('--workdir', required=True)
    p.add_argument('--server', default='prosody', choices=sorted(SERVER_IPS))
    p.add_argument('--scale', type=float, default=1.0, help='multiply every phase\'s message count')
    p.add_argument('--phase', nargs='+', action='extend', choices=PHASES)
    args = p.parse_args()
    args.xsgw = os.path.abspath(args.xsgw)
    return asyncio.run(run(args))


if __name__ == '__main__':
    sys.exit(main())
