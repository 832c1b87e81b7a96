"""The SIP side of the call scenarios (test/e2e/calls.py): dnsmasq and Kamailio (the same recipes as run.py),
baresip phones (test/e2e/peers/baresip_call.sh) with a persistent ctrl_tcp connection that collects their
call events, and sipp user agents for INVITE (test/e2e/sipp/uas_invite_*.xml, uac_invite_*.xml).

- BaresipPhone: one baresip registered at Kamailio as USER@simple.test. Commands (dial, hangup, accept,
  callstat) and events (CALL_INCOMING, CALL_RINGING, CALL_ESTABLISHED, CALL_RTPESTAB: the first RTP packet
  of the call arrived, CALL_RTCP, CALL_CLOSED with the reason, e.g. '486 Busy Here'; JSON with type,
  id = the SIP Call-ID, direction, peeruri, param) go over one ctrl_tcp connection kept open. baresip runs
  with its SIP trace on, so its run.log holds every SIP message with its SDP (sdp()), and a line
  "incoming rtp for 'audio' established, receiving from IP:PORT" per call (rtp_from()).
- CallPeers: dnsmasq + Kamailio + the phones + the registered sipp UASes of one run; stops all of it
  (SipPeers.stop), and stop_leftovers() cleans up after an interrupted run.

Waiting polls (files) or awaits (sockets) with a deadline; nothing sleeps to synchronise.
"""
import asyncio
import json
import os
import re
import time

from sip import ANSI, KAMAILIO, LogFile, SipError, SipPeers, Sipp, make_certs, run_script

POLL = 0.05


class Event(dict):
    """A baresip event (the JSON object) with its arrival time in .when (monotonic)."""


class BaresipPhone:
    """baresip as a SIP phone (baresip_call.sh), with one ctrl_tcp connection kept open: every event is
    kept in self.events in arrival order."""

    def __init__(self, name, user, sip_port, ctrl_port, answermode, rtp_ports, peers_dir, log):
        self.name, self.user, self.sip_port, self.ctrl_port = name, user, sip_port, ctrl_port
        self.answermode, self.rtp_ports, self.peers_dir, self.log = answermode, rtp_ports, peers_dir, log
        self.aor = 'sip:%s@simple.test' % user
        self.dir = os.path.join(peers_dir, 'baresip', name)
        self.run_log = BaresipRunLog(os.path.join(self.dir, 'run.log'), log, sip_port)
        self.events = []
        self._changed = asyncio.Condition()
        self._waiters = {}
        self._reader = None
        self._writer = None
        self._task = None
        self.started = False
        self._tokens = 0

    async def start(self):
        self.started = True
        await run_script('baresip_call.sh', 'start', self.peers_dir, self.log, 20, self.name, self.user,
                         str(self.sip_port), str(self.ctrl_port), self.answermode, self.rtp_ports)
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection('127.0.0.1', self.ctrl_port), 5)
        except (OSError, asyncio.TimeoutError) as e:
            raise SipError('baresip %s: ctrl_tcp 127.0.0.1:%d: %s' % (self.name, self.ctrl_port, e)) from None
        self._task = asyncio.ensure_future(self._read())

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.started:
            self.started = False
            await run_script('baresip_call.sh', 'stop', self.peers_dir, self.log, 15, self.name)

    async def _read(self):
        buf = b''
        while True:
            data = await self._reader.read(65536)
            if not data:
                self.log('baresip %s: ctrl_tcp closed' % self.name)
                return
            buf += data
            while b':' in buf:
                n, rest = buf.split(b':', 1)
                if not n.isdigit() or len(rest) < int(n) + 1:
                    break
                body, buf = rest[:int(n)], rest[int(n) + 1:]
                try:
                    obj = Event(json.loads(body))
                except ValueError:
                    self.log('baresip %s: not JSON on ctrl_tcp: %r' % (self.name, body[:200]))
                    continue
                obj.when = time.monotonic()
                if obj.get('response'):
                    w = self._waiters.pop(obj.get('token'), None)
                    if w is not None and not w.done():
                        w.set_result(obj)
                    continue
                self.log('baresip %s: event %s id=%s peer=%s param=%r' % (self.name, obj.get('type'), obj.get('id'),
                                                                         obj.get('peeruri'), obj.get('param')))
                async with self._changed:
                    self.events.append(obj)
                    self._changed.notify_all()

    async def command(self, command, params='', within=3.0):
        """Send one command; return its response (a dict), which must say ok."""
        if self._writer is None:
            raise SipError('baresip %s is not running' % self.name)
        self._tokens += 1
        token = '%s-%d' % (self.name, self._tokens)
        fut = asyncio.get_event_loop().create_future()
        self._waiters[token] = fut
        msg = json.dumps({'command': command, 'params': params, 'token': token}).encode()
        self.log('baresip %s: command %s %s' % (self.name, command, params))
        self._writer.write(str(len(msg)).encode() + b':' + msg + b',')
        await self._writer.drain()
        try:
            answer = await asyncio.wait_for(fut, within)
        except asyncio.TimeoutError:
            self._waiters.pop(token, None)
            raise SipError('baresip %s: no answer to %s within %.0fs' % (self.name, command, within)) from None
        self.log('baresip %s: %s -> ok=%s %r' % (self.name, command, answer.get('ok'), (answer.get('data') or '')[:300]))
        if not answer.get('ok'):
            raise SipError('baresip %s: command %s %s failed: %s' % (self.name, command, params, answer))
        return answer

    def mark(self):
        return len(self.events)

    async def expect_event(self, etype, within, start=0, call_id=None, pred=None, abort=None):
        """Wait for an event of type etype (for the call call_id, and satisfying pred, when given) from
        index start on; return it. abort: polled meanwhile, a true value ends the wait with that reason."""
        deadline = time.monotonic() + within
        what = 'baresip %s event %s%s' % (self.name, etype, ' for call %s' % call_id if call_id else '')
        self.log('expect %s within %.1fs' % (what, within))
        async with self._changed:
            while True:
                for e in self.events[start:]:
                    if e.get('type') == etype and (call_id is None or e.get('id') == call_id) and (pred is None or pred(e)):
                        self.log('seen %s' % dict(e))
                        return e
                why = abort() if abort else None
                if why:
                    raise SipError('%s expected, but %s' % (what, why))
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = ['%s(%s)' % (e.get('type'), e.get('param')) for e in self.events[start:]
                            if call_id is None or e.get('id') == call_id]
                    raise SipError('%s expected within %.1fs; events seen: %s (log %s)'
                                   % (what, within, ', '.join(seen) or 'none', self.run_log.path))
                try:
                    await asyncio.wait_for(self._changed.wait(), min(left, 0.25))
                except asyncio.TimeoutError:
                    pass

    def events_of(self, call_id, start=0):
        return [e for e in self.events[start:] if e.get('id') == call_id]

    def open_calls(self):
        """Call-IDs with events but no CALL_CLOSED."""
        ids = []
        for e in self.events:
            cid = e.get('id')
            if cid and e.get('class') == 'call' and cid not in ids:
                ids.append(cid)
        closed = {e.get('id') for e in self.events if e.get('type') == 'CALL_CLOSED'}
        return [c for c in ids if c not in closed]

    async def hang_up_all(self, within=5.0):
        """Hang up whatever call is still open (a scenario that failed half-way), so the next one starts clean."""
        for cid in self.open_calls():
            self.log('baresip %s: call %s still open: hangup' % (self.name, cid))
            try:
                await self.command('hangup')
                await self.expect_event('CALL_CLOSED', within, call_id=cid)
            except SipError as e:
                self.log('baresip %s: cleanup: %s' % (self.name, e))

    # -- what its run.log (with the SIP trace) says
    async def sdp(self, call_id, first_line_regex, sent, within=3.0):
        """sdp_sent / sdp_received, waiting up to `within` s for the message to reach run.log (baresip's
        events can overtake its trace, which goes through a pty and `script`). Raises SipError."""
        return await self._from_trace(self.run_log.sdp, ' with an SDP', call_id, first_line_regex, sent, within)

    async def message(self, call_id, first_line_regex, sent, within=3.0):
        """The lines of a SIP message in the trace (BaresipRunLog.message), waiting up to `within` s for it."""
        return await self._from_trace(self.run_log.message, '', call_id, first_line_regex, sent, within)

    async def _from_trace(self, find, what, call_id, first_line_regex, sent, within):
        deadline = time.monotonic() + within
        while True:
            found = find(call_id, first_line_regex, sent)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise SipError('baresip %s: no %s message /%s/%s for call %s in its trace within %.0fs (%s)'
                               % (self.name, 'sent' if sent else 'received', first_line_regex, what, call_id,
                                  within, self.run_log.path))
            await asyncio.sleep(POLL)

    def sdp_sent(self, call_id, first_line_regex):
        """The SDP body of the first SIP message baresip sent for call_id whose start line matches
        first_line_regex (e.g. r'^INVITE ' or r'^SIP/2.0 200'), as {'c': ip, 'm': (port, [pts])}; None if
        not (yet) in the trace."""
        return self.run_log.sdp(call_id, first_line_regex, sent=True)

    def sdp_received(self, call_id, first_line_regex):
        return self.run_log.sdp(call_id, first_line_regex, sent=False)

    def trace_mark(self):
        """Number of SIP messages in the trace so far; pass as start= to sent_invite."""
        return len(self.run_log.messages())

    async def sent_invite(self, start, within=5.0):
        """The Call-ID of the first INVITE baresip sent after trace index start (the call a `dial` made)."""
        deadline = time.monotonic() + within
        while True:
            for direction, lines in self.run_log.messages()[start:]:
                if direction == 'sent' and lines and lines[0].startswith('INVITE '):
                    for l in lines:
                        m = re.match(r'^(?:Call-ID|i)\s*:\s*(\S+)\s*$', l, re.I)
                        if m:
                            self.log('baresip %s: sent INVITE, Call-ID %s' % (self.name, m.group(1)))
                            return m.group(1)
            if time.monotonic() >= deadline:
                raise SipError('baresip %s sent no INVITE within %.1fs (log %s)' % (self.name, within, self.run_log.path))
            await asyncio.sleep(POLL)

    def log_mark(self):
        """Number of lines in run.log so far; pass as start= to rtp_from."""
        return self.run_log.mark()

    def rtp_from(self, start=0):
        """[(ip, port)] of every "incoming rtp for 'audio' established, receiving from IP:PORT" line of run.log
        from line start on, in order (baresip prints one when the first RTP packet of a call arrives)."""
        return [(m.group(1), int(m.group(2))) for m in
                (re.search(r"incoming rtp for 'audio' established, receiving from ([\d.]+):(\d+)", l)
                 for l in self.run_log.lines()[start:]) if m]


class BaresipRunLog(LogFile):
    """baresip's run.log without colour codes. With its SIP trace on (baresip -s) it holds every SIP message
    sent and received, each after the lines `#` and `UDP SRC -> DST`; sent ones have baresip's own SIP
    address as SRC. sdp() finds one message's SDP."""

    def __init__(self, path, log, sip_port):
        super().__init__(path, log)
        self.me = '127.0.0.1:%d' % sip_port

    def lines(self):
        return [ANSI.sub('', line).replace('\r', '') for line in super().lines()]

    def messages(self):
        """[(direction 'sent'|'received', [lines])] of the SIP messages in the trace."""
        out = []
        cur = None
        for line in self.lines():
            m = re.match(r'^(?:UDP|TCP|TLS) (\S+) -> (\S+)$', line)
            if m:
                cur = ('sent' if m.group(1) == self.me else 'received', [])
                out.append(cur)
                continue
            if line == '#':
                cur = None
            elif cur is not None:
                cur[1].append(line)
        return out

    def message(self, call_id, first_line_regex, sent=True):
        """The lines (blank ones left out) of the first SIP message for call_id sent (received) by baresip
        whose start line matches first_line_regex; None when there is none (yet)."""
        rx = re.compile(first_line_regex)
        for direction, lines in self.messages():
            if direction != ('sent' if sent else 'received'):
                continue
            body = [l for l in lines if l.strip()]
            if not body or not rx.search(body[0]):
                continue
            if any(re.match(r'^(Call-ID|i)\s*:\s*%s\s*$' % re.escape(call_id), l, re.I) for l in lines):
                return body
        return None

    def sdp(self, call_id, first_line_regex, sent=True):
        """The SDP of the first message for call_id (see message()) that has one, as {'c': the first c=
        address, 'm': (audio port, [payload types]), 'rtpmap': {pt: (name, rate)}, 'lines': [every SDP line
        (x=...) of the body, in order]}; None when there is none (yet)."""
        rx = re.compile(first_line_regex)
        for direction, lines in self.messages():
            if direction != ('sent' if sent else 'received'):
                continue
            body = [l for l in lines if l.strip()]
            if not body or not rx.search(body[0]):
                continue
            if not any(re.match(r'^(Call-ID|i)\s*:\s*%s\s*$' % re.escape(call_id), l, re.I) for l in lines):
                continue
            sdp = {}
            try:
                v = next(i for i, l in enumerate(lines) if l == 'v=0')
            except StopIteration:
                v = len(lines)
            sdp['lines'] = [l for l in lines[v:] if re.match(r'^[a-z]=', l)]
            for l in lines:
                m = re.match(r'^c=IN IP4 (\S+)', l)
                if m and 'c' not in sdp:
                    sdp['c'] = m.group(1)
                m = re.match(r'^m=audio (\d+) RTP/AVP((?: \d+)*)', l)
                if m:
                    sdp['m'] = (int(m.group(1)), [int(x) for x in m.group(2).split()])
                m = re.match(r'^a=rtpmap:(\d+) ([^/\s]+)/(\d+)', l)
                if m:
                    sdp.setdefault('rtpmap', {})[int(m.group(1))] = (m.group(2), int(m.group(3)))
            if 'm' in sdp:
                return sdp
        return None


class CallPeers(SipPeers):
    """dnsmasq + Kamailio (no sipp bob: bob@simple.test is a baresip here), the baresip phones and the
    registered sipp UASes of one calls.py run. stop() (SipPeers') ends UACs, phones, UASes, recipes."""

    async def start(self, gateway_stub=False):
        t0 = time.monotonic()
        os.makedirs(self.dir, exist_ok=True)
        await make_certs(self.peers_dir, self.log)          # Kamailio's TLS listeners need them
        await run_script('dns.sh', 'start', self.peers_dir, self.log, 15)
        self.started.append('dns.sh')
        await run_script('kamailio.sh', 'start', self.peers_dir, self.log, 20)
        self.started.append('kamailio.sh')
        self.start_time = time.monotonic() - t0

    async def phone(self, name, user, sip_port, ctrl_port, answermode, rtp_ports):
        """A baresip phone, started (and registered at Kamailio) on first use."""
        for b in self.baresips:
            if b.name == name:
                return b
        b = BaresipPhone(name, user, sip_port, ctrl_port, answermode, rtp_ports, self.peers_dir, self.log)
        self.baresips.append(b)
        await b.start()
        return b

    async def invite_uas(self, user, ip, port, scenario_file):
        """A sipp UAS running sipp/scenario_file on ip:port (UDP), registered at Kamailio as user@simple.test;
        started on first use. Returns the Sipp (its .trace holds every message)."""
        for u in self.uases:
            if u.name == user:
                return u
        u = Sipp(user, ip, port, 'u1', self.dir, self.log, scenario_file=scenario_file)
        self.uases.append(u)
        await u.start()
        await self.register(user, '%s:%d' % (ip, port))
        return u


def kamailio():
    return '%s:%d' % KAMAILIO
