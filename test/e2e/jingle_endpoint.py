"""A scripted Jingle endpoint for the call scenarios (test/e2e/calls.py): an XMPP client (slixmpp, through
the real XMPP server) that speaks Jingle (XEP-0166/0167, raw-udp transport XEP-0177) and Jingle Message
Initiation (XEP-0353) as raw XML, and an RTP port of its own on loopback that sends real RTP (12-byte
header, 20 ms of G.711 per packet, a 1 kHz tone) and records the source address of every packet it gets.

Nothing is answered behind the scenario's back except Jingle IQ sets, which get an IQ result at once (a
Jingle endpoint acknowledges every action before acting on it, XEP-0166 section 6.2); the scenario decides
everything else (proceed, reject, accept, terminate). Every Jingle IQ and message received is kept in
order, so that a scenario waits for one from a mark on, with a deadline.

Use /usr/bin/python3 (Debian's, which has python3-slixmpp).
"""
import asyncio
import math
import os
import random
import struct
import time
from xml.sax.saxutils import quoteattr

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from xmpp_client import Client, ClientError, local, ns, to_text

NS_JINGLE = 'urn:xmpp:jingle:1'
NS_RTP = 'urn:xmpp:jingle:apps:rtp:1'
NS_RTP_INFO = 'urn:xmpp:jingle:apps:rtp:info:1'
NS_RAW_UDP = 'urn:xmpp:jingle:transports:raw-udp:1'
NS_ICE_UDP = 'urn:xmpp:jingle:transports:ice-udp:1'
NS_JMI = 'urn:xmpp:jingle-message:0'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'

# The codecs the endpoint can send and take: static RTP payload types of RFC 3551.
PCMU = (0, 'PCMU', 8000)
PCMA = (8, 'PCMA', 8000)
KNOWN_CODECS = {'PCMU': PCMU, 'PCMA': PCMA}


# ---------------------------------------------------------------------------------------------
# G.711 and RTP

def _ulaw(sample):
    """One 16-bit linear sample as G.711 mu-law (ITU-T G.711, the usual segment encoder)."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), clip) + bias
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | exponent << 4 | mantissa) & 0xFF


def _alaw(sample):
    """One 16-bit linear sample as G.711 A-law."""
    sign = 0x80 if sample >= 0 else 0
    sample = min(abs(sample), 32767) >> 3
    if sample < 32:
        code = sample >> 1
    else:
        exponent = 1
        while sample >= 64 and exponent < 7:
            sample >>= 1
            exponent += 1
        code = exponent << 4 | (sample >> 1) & 0x0F
    return (sign | code) ^ 0x55


def tone_frames(pt, frequency=1000.0, amplitude=8000, rate=8000, samples=160):
    """The 20 ms G.711 payloads of a tone, cycling: 8 frames make 160 ms, a whole number of 1 kHz periods."""
    enc = _ulaw if pt == 0 else _alaw
    frames = []
    for f in range(8):
        frames.append(bytes(enc(int(amplitude * math.sin(2 * math.pi * frequency * (f * samples + i) / rate)))
                            for i in range(samples)))
    return frames


class RtpPacket:
    __slots__ = ('when', 'source', 'pt', 'seq', 'ts', 'ssrc', 'payload_len', 'marker')

    def __init__(self, when, source, data):
        self.when, self.source = when, source
        b0, b1, self.seq, self.ts, self.ssrc = struct.unpack('!BBHII', data[:12])
        cc = b0 & 0x0F
        self.pt, self.marker = b1 & 0x7F, bool(b1 & 0x80)
        self.payload_len = len(data) - 12 - 4 * cc


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self, port):
        self.port = port

    def datagram_received(self, data, addr):
        self.port._received(data, addr)


class _Rtcp(asyncio.DatagramProtocol):
    def __init__(self, port):
        self.port = port

    def datagram_received(self, data, addr):
        self.port.rtcp.append((time.monotonic(), addr, len(data)))


class RtpPort:
    """An RTP socket on 127.0.0.1 (even port) with its RTCP neighbour (port + 1, only read: what arrives is
    counted), sending 20 ms G.711 packets of a tone to one destination at the clock's pace, and keeping
    every RTP packet it receives (RtpPacket: source address, payload type, sequence, SSRC).
    Packets that are not RTP version 2 with at least a 12-byte header are counted in `junk`."""

    def __init__(self, log, name='rtp'):
        self.log, self.name = log, name
        self.packets = []
        self.junk = 0
        self.rtcp = []
        self.sent = 0
        self.dest = None
        self.ssrc = random.getrandbits(32)
        self.port = None
        self._transports = []
        self._sender = None
        self._arrived = asyncio.Event()

    async def open(self, first=20000, last=29998):
        loop = asyncio.get_running_loop()
        start = first + 2 * random.randrange((last - first) // 2)
        for k in range(0, last - first, 2):
            port = first + (start - first + k) % (last - first)
            try:
                rtp, _ = await loop.create_datagram_endpoint(lambda: _Rtp(self), local_addr=('127.0.0.1', port))
            except OSError:
                continue
            try:
                rtcp, _ = await loop.create_datagram_endpoint(lambda: _Rtcp(self), local_addr=('127.0.0.1', port + 1))
            except OSError:
                rtp.close()
                continue
            self._transports = [rtp, rtcp]
            self.port = port
            self.log('%s: RTP on 127.0.0.1:%d (RTCP %d), SSRC %d' % (self.name, port, port + 1, self.ssrc))
            return self
        raise ClientError('no free even UDP port pair on 127.0.0.1 in %d..%d' % (first, last))

    @property
    def address(self):
        return ('127.0.0.1', self.port)

    def _received(self, data, addr):
        if len(data) < 12 or data[0] >> 6 != 2:
            self.junk += 1
            return
        p = RtpPacket(time.monotonic(), addr, data)
        if len(self.packets) == 0:
            self.log('%s: first RTP packet from %s:%d pt=%d ssrc=%d' % (self.name, addr[0], addr[1], p.pt, p.ssrc))
        self.packets.append(p)
        self._arrived.set()

    def mark(self):
        return len(self.packets)

    def sources(self, start=0):
        """{(ip, port): packets} of what arrived from index start on."""
        out = {}
        for p in self.packets[start:]:
            out[p.source] = out.get(p.source, 0) + 1
        return out

    async def expect_packets(self, count, within, start=0, source=None):
        """Wait until `count` packets arrived from index start on (from `source` only, when given); return
        them. Raises ClientError at the deadline, naming what did arrive."""
        deadline = time.monotonic() + within
        self.log('%s: expect %d RTP packets%s within %.1fs' % (self.name, count, ' from %s:%d' % source if source else '',
                                                               within))
        while True:
            got = [p for p in self.packets[start:] if source is None or p.source == source]
            if len(got) >= count:
                self.log('%s: got %d RTP packets; sources %s' % (self.name, len(got), self.sources(start)))
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClientError('%d RTP packets%s expected at 127.0.0.1:%d within %.1fs, got %d; all sources: %s'
                                  % (count, ' from %s:%d' % source if source else '', self.port, within, len(got),
                                     self.sources(start) or 'none'))
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    def start_sending(self, dest, pt):
        """Send a packet every 20 ms to dest (ip, port) with payload type pt (0 PCMU, 8 PCMA) until stopped."""
        self.stop_sending()
        self.dest = tuple(dest)
        self.log('%s: sending RTP pt=%d to %s:%d' % (self.name, pt, dest[0], dest[1]))
        self._sender = asyncio.ensure_future(self._send_loop(self.dest, pt))

    async def _send_loop(self, dest, pt):
        frames = tone_frames(pt)
        seq = random.getrandbits(16)
        ts = random.getrandbits(32)
        t0 = time.monotonic()
        n = 0
        while True:
            header = struct.pack('!BBHII', 0x80, (0x80 if n == 0 else 0) | pt, (seq + n) & 0xFFFF,
                                 (ts + 160 * n) & 0xFFFFFFFF, self.ssrc)
            self._transports[0].sendto(header + frames[n % len(frames)], dest)
            self.sent += 1
            n += 1
            # pacing by the clock (a media rate, not a synchronisation)
            await asyncio.sleep(max(0.0, t0 + n * 0.020 - time.monotonic()))

    def stop_sending(self):
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None
            self.log('%s: stopped sending after %d packets' % (self.name, self.sent))

    def close(self):
        self.stop_sending()
        for t in self._transports:
            t.close()
        self._transports = []


# ---------------------------------------------------------------------------------------------
# Jingle XML

def child(el, namespace, name):
    """The first child of el called {namespace}name, or None."""
    if el is None:
        return None
    for c in el:
        if ns(c.tag) == namespace and local(c.tag) == name:
            return c
    return None


def jingle_of(stanza):
    """The <jingle/> child of an IQ, or None."""
    return child(stanza, NS_JINGLE, 'jingle')


def contents(jingle):
    return [c for c in jingle if ns(c.tag) == NS_JINGLE and local(c.tag) == 'content']


def description(content):
    return child(content, NS_RTP, 'description')


def payload_types(jingle):
    """[(id, name, clockrate)] of every payload-type of the first content's RTP description, in order
    (name and clockrate as given; clockrate an int, or None when absent)."""
    cs = contents(jingle)
    d = description(cs[0]) if cs else None
    out = []
    for p in (d if d is not None else []):
        if ns(p.tag) == NS_RTP and local(p.tag) == 'payload-type':
            rate = p.get('clockrate')
            out.append((int(p.get('id', '-1')), p.get('name'), int(rate) if rate and rate.isdigit() else None))
    return out


def transport_of(jingle):
    """The <transport/> of the first content (any namespace), or None."""
    cs = contents(jingle)
    if not cs:
        return None
    for c in cs[0]:
        if local(c.tag) == 'transport':
            return c
    return None


def candidates(jingle, namespace=NS_RAW_UDP):
    """[(ip, port, component)] of the candidates of the first content's transport in `namespace` (raw-udp
    unless told; port and component ints when they are numbers, component as given otherwise)."""
    cs = contents(jingle)
    t = child(cs[0], namespace, 'transport') if cs else None
    out = []
    for c in (t if t is not None else []):
        if ns(c.tag) == namespace and local(c.tag) == 'candidate':
            port = c.get('port', '')
            out.append((c.get('ip'), int(port) if port.isdigit() else None, c.get('component')))
    return out


def rtp_candidate(jingle):
    """(ip, port) of the component-1 raw-udp candidate, or None."""
    for ip, port, comp in candidates(jingle):
        if comp in ('1', None):
            return (ip, port)
    return None


def reason_of(jingle):
    """The condition name inside <reason/> (e.g. 'success', 'busy'), or None when there is no reason."""
    r = child(jingle, NS_JINGLE, 'reason')
    if r is None:
        return None
    for c in r:
        if ns(c.tag) == NS_JINGLE and local(c.tag) not in ('text',):
            return local(c.tag)
    return ''


def payload_xml(codecs):
    return ''.join("<payload-type id='%d' name='%s' clockrate='%d'/>" % c for c in codecs)


def content_xml(codecs, rtp_address, creator='initiator'):
    """One audio content: RTP description with the codecs, a raw-udp transport with one candidate."""
    return ("<content creator='%s' name='audio' senders='both'>"
            "<description xmlns='%s' media='audio'>%s</description>"
            "<transport xmlns='%s'><candidate component='1' generation='0' id='c1' ip='%s' port='%d'/></transport>"
            "</content>" % (creator, NS_RTP, payload_xml(codecs), NS_RAW_UDP, rtp_address[0], rtp_address[1]))


class IceCandidate:
    """One ICE-UDP host candidate (XEP-0176) as the endpoint offers it; .sdp is the a=candidate line the
    gateway is expected to write for it (RFC 8839, as xsgw writes it: no network-id when network is 0)."""

    def __init__(self, component, ip, port, foundation='1', priority=None, cid=None):
        self.component, self.ip, self.port, self.foundation = component, ip, port, foundation
        # RFC 8445 section 5.1.2.1 for a host candidate: type preference 126, local preference 65535
        self.priority = priority if priority is not None else (126 << 24) | (65535 << 8) | (256 - component)
        self.id = cid or 'ice%d-%d' % (component, port)

    def xml(self):
        return ("<candidate component='%d' foundation='%s' generation='0' id='%s' ip='%s' port='%d' "
                "priority='%d' protocol='udp' type='host'/>" % (self.component, self.foundation, self.id,
                                                                  self.ip, self.port, self.priority))

    @property
    def sdp(self):
        return 'a=candidate:%s %d udp %d %s %d typ host generation 0' % (self.foundation, self.component,
                                                                       self.priority, self.ip, self.port)


def ice_candidates(rtp_address):
    """Host candidates for component 1 (RTP) and 2 (RTCP, the next port) of an RtpPort's address."""
    ip, port = rtp_address
    return [IceCandidate(1, ip, port), IceCandidate(2, ip, port + 1)]


def ice_transport_xml(ufrag, pwd, cands):
    return "<transport xmlns='%s' ufrag='%s' pwd='%s'>%s</transport>" % (NS_ICE_UDP, ufrag, pwd,
                                                                           ''.join(c.xml() for c in cands))


def ice_content_xml(codecs, ufrag, pwd, cands, creator='initiator'):
    """One audio content: RTP description with the codecs, an ICE-UDP transport with these candidates
    (none: they trickle in later, in transport-info)."""
    return ("<content creator='%s' name='audio' senders='both'>"
            "<description xmlns='%s' media='audio'>%s</description>%s"
            "</content>" % (creator, NS_RTP, payload_xml(codecs), ice_transport_xml(ufrag, pwd, cands)))


def ice_transport_info_xml(ufrag, pwd, cands, creator='initiator'):
    """The content of a transport-info carrying (trickled) ICE-UDP candidates for the audio content."""
    return "<content creator='%s' name='audio'>%s</content>" % (creator, ice_transport_xml(ufrag, pwd, cands))


def reason_xml(condition, text=None):
    return "<reason><%s/>%s</reason>" % (condition, '<text>%s</text>' % text if text else '')


class Session:
    """What one call's scenario knows of a Jingle session: its id, the peer's full JID, who started it."""

    def __init__(self, sid, peer, initiator, responder=None):
        self.sid, self.peer, self.initiator, self.responder = sid, peer, initiator, responder


# ---------------------------------------------------------------------------------------------
# the endpoint

class JingleEndpoint(Client):
    """A logged-in XMPP user that is a Jingle endpoint. Received Jingle IQ sets are acknowledged (IQ result)
    and kept in self.jingles; messages are kept in self.messages (Client); a scenario awaits them with
    expect_jingle / expect_jmi. Every send and receipt is written to the run log."""

    def __init__(self, jid, password, host, log, port=5222):
        super().__init__(jid, password, host, port)
        self.log = log
        self.jingles = []          # every Jingle IQ set received, in order (ET elements)
        self._jingle_arrived = asyncio.Condition()
        self.acked = []            # ids of the IQs answered
        self.register_handler(Callback('e2e-jingle', MatchXPath('{%s}iq/{%s}jingle' % (self.default_ns, NS_JINGLE)),
                                       self._on_jingle))

    @property
    def full(self):
        return self.boundjid.full

    async def login(self, within=10.0, presence=True):
        """Log in and send initial presence, then ask for the roster once more: the server handles a session's
        stanzas in order, so once that is answered the resource is available to stanzas addressed to the bare
        JID (a <propose/> that overtakes the presence gets service-unavailable from Prosody). jabberd2 does not
        echo initial presence, so that echo cannot serve."""
        await super().login(within, presence=presence)
        if presence:
            r = await self.iq('get', self.boundjid.bare, "<query xmlns='jabber:iq:roster'/>", within)
            if r.get('type') != 'result':
                raise ClientError('roster request after initial presence: %s' % to_text(r))

    # -- receiving
    def _on_jingle(self, iq):
        el = iq.xml
        if el.get('type') not in ('set', 'get'):
            return      # results and errors are answers (Client counts them)
        # acknowledge at once (XEP-0166 section 6.2), then keep it for the scenario
        self.send_raw("<iq type='result' to=%s id=%s/>" % (quoteattr(el.get('from') or ''), quoteattr(el.get('id') or '')))
        self.acked.append(el.get('id'))
        j = jingle_of(el)
        self.log('%s: got jingle %s sid=%s from %s (acked)' % (self.boundjid.bare, j.get('action'), j.get('sid'),
                                                               el.get('from')))
        asyncio.ensure_future(self._add_jingle(el))

    async def _add_jingle(self, el):
        async with self._jingle_arrived:
            self.jingles.append(el)
            self._jingle_arrived.notify_all()

    def jingle_mark(self):
        return len(self.jingles)

    async def expect_jingle(self, action, sid=None, within=8.0, start=0, sender=None, abort=None):
        """Wait for a Jingle IQ set with this action (and sid, and from `sender`, when given) from index
        `start` on; return (iq, jingle). abort: a callable polled meanwhile; a true value it returns ends the
        wait with a failure naming it. Raises ClientError at the deadline, naming what did arrive."""
        what = 'jingle %s%s%s' % (action, ' sid=%s' % sid if sid else '', ' from %s' % sender if sender else '')
        self.log('%s: expect %s within %.1fs' % (self.boundjid.bare, what, within))

        def pred(el):
            j = jingle_of(el)
            return (j is not None and j.get('action') == action and (sid is None or j.get('sid') == sid)
                    and (sender is None or el.get('from') == sender))
        deadline = asyncio.get_event_loop().time() + within
        async with self._jingle_arrived:
            while True:
                for el in self.jingles[start:]:
                    if pred(el):
                        self.log('%s: seen %s' % (self.boundjid.bare, to_text(el)))
                        return el, jingle_of(el)
                why = abort() if abort else None
                if why:
                    raise ClientError('%s expected, but %s' % (what, why))
                left = deadline - asyncio.get_event_loop().time()
                if left <= 0:
                    seen = [to_text(m) for m in self.jingles[start:]]
                    raise ClientError('%s expected within %.1fs; received %d jingle IQ(s)%s' % (
                        what, within, len(seen), (': ' + ' | '.join(seen[-3:])) if seen else ''))
                try:
                    await asyncio.wait_for(self._jingle_arrived.wait(), min(left, 0.25))
                except asyncio.TimeoutError:
                    pass

    def jingles_for(self, sid, start=0):
        """[(action, iq)] of the Jingle IQ sets received for sid from index start on."""
        return [(jingle_of(el).get('action'), el) for el in self.jingles[start:] if jingle_of(el).get('sid') == sid]

    async def expect_jmi(self, kind, sid=None, within=8.0, start=0, sender=None, sender_bare=None):
        """Wait for a message carrying a XEP-0353 element <kind xmlns='urn:xmpp:jingle-message:0'/>
        (propose, proceed, reject, retract, accept) with this id (any id when None), from the full JID
        `sender` or from any resource of `sender_bare` when given; return (message, element)."""
        what = '<%s xmlns=%r%s/>%s' % (kind, NS_JMI, " id='%s'" % sid if sid else '',
                                       ' from %s' % (sender or sender_bare) if sender or sender_bare else '')
        self.log('%s: expect message %s within %.1fs' % (self.boundjid.bare, what, within))

        def pred(m):
            e = child(m, NS_JMI, kind)
            return (e is not None and m.get('type') != 'error' and (sid is None or e.get('id') == sid)
                    and (sender is None or m.get('from') == sender)
                    and (sender_bare is None or (m.get('from') or '').split('/', 1)[0] == sender_bare))
        m = await self.expect_message(pred, within, start, 'a message with ' + what)
        self.log('%s: seen %s' % (self.boundjid.bare, to_text(m)))
        return m, child(m, NS_JMI, kind)

    def jmi_for(self, sid, start=0):
        """[(kind, message)] of the XEP-0353 messages received for sid from index start on."""
        out = []
        for m in self.messages[start:]:
            for e in m:
                if ns(e.tag) == NS_JMI and e.get('id') == sid:
                    out.append((local(e.tag), m))
        return out

    # -- sending
    async def jingle(self, to, action, sid, inner='', attrs='', within=5.0):
        """Send a Jingle IQ set and return the answer (ET element; the caller checks its type)."""
        payload = "<jingle xmlns='%s' action='%s' sid=%s%s>%s</jingle>" % (NS_JINGLE, action, quoteattr(sid),
                                                                            (' ' + attrs) if attrs else '', inner)
        self.log('%s: send jingle %s sid=%s to %s: %s' % (self.boundjid.bare, action, sid, to, payload))
        r = await self.iq('set', to, payload, within=within)
        self.log('%s: answer %s' % (self.boundjid.bare, to_text(r)))
        return r

    async def session_initiate(self, to, sid, codecs, rtp_address, within=5.0, content=None):
        """content: the raw <content/> XML to send instead of a raw-udp one made of codecs and rtp_address."""
        return await self.jingle(to, 'session-initiate', sid, content or content_xml(codecs, rtp_address),
                                 "initiator=%s" % quoteattr(self.full), within)

    async def transport_info(self, to, sid, content, within=5.0):
        return await self.jingle(to, 'transport-info', sid, content, "initiator=%s" % quoteattr(self.full), within)

    async def session_accept(self, to, sid, initiator, codecs, rtp_address, within=5.0):
        return await self.jingle(to, 'session-accept', sid, content_xml(codecs, rtp_address),
                                 "initiator=%s responder=%s" % (quoteattr(initiator), quoteattr(self.full)), within)

    async def session_terminate(self, to, sid, condition, within=5.0):
        return await self.jingle(to, 'session-terminate', sid, reason_xml(condition), within=within)

    def send_jmi(self, to, kind, sid, inner='', mtype=None):
        """Send a XEP-0353 message <kind id=sid>inner</kind> (with XEP-0334 <store/> as 0353 asks for)."""
        raw = "<message to=%s%s id=%s><%s xmlns='%s' id=%s>%s</%s><store xmlns='urn:xmpp:hints'/></message>" % (
            quoteattr(to), ' type=%s' % quoteattr(mtype) if mtype else '', quoteattr('jmi-%s-%s' % (kind, sid)),
            kind, NS_JMI, quoteattr(sid), inner, kind)
        self.log('%s: send %s' % (self.boundjid.bare, raw))
        self.send_raw(raw)

    def propose(self, to, sid):
        self.send_jmi(to, 'propose', sid, "<description xmlns='%s' media='audio'/>" % NS_RTP)

    def proceed(self, to, sid):
        self.send_jmi(to, 'proceed', sid)

    def reject(self, to, sid, condition=None):
        self.send_jmi(to, 'reject', sid, "<reason xmlns='%s'><%s/></reason>" % (NS_JINGLE, condition) if condition else '')

    def retract(self, to, sid):
        self.send_jmi(to, 'retract', sid)


def pick_codec(offered):
    """The first offered payload type the endpoint knows (by name, case-insensitive, at 8000 Hz), as
    (id, name, clockrate) with the offer's id; None when there is none."""
    for pid, name, rate in offered:
        known = KNOWN_CODECS.get((name or '').upper())
        if known and rate in (None, 8000) and pid == known[0]:
            return (pid, known[1], 8000)
    return None


def new_sid(what):
    return 'e2e-%s-%d-%s' % (what, os.getpid(), '%08x' % random.getrandbits(32))
