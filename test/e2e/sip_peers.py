#!/usr/bin/python3
"""Checks the SIP peers of the end-to-end tests on their own, without xsgw: dnsmasq answers the
*.test zone, Kamailio registers bob and relays MESSAGEs to him (UDP and, for a large one, TCP),
answers 404 for an unknown user, and finds the gateway's domain sip.test through NAPTR/SRV, here
reaching a sipp stub that listens where xsgw would (127.0.0.1:5080). The failover.test target
that is alive (a sipp UAS) answers too. For the presence scenarios: refuse.test resolves, Kamailio's
presence server keeps PUBLISHes for simple.test and for sip.test (xsgw's publish_to), and baresip
registers and answers on its ctrl_tcp socket.

usage: /usr/bin/python3 test/e2e/sip_peers.py --workdir DIR
Prints PASS/FAIL per check and 'N passed, N failed'; exit status 0 only if all passed. Everything it
starts is stopped at the end; the logs stay under DIR/peers (paths printed on failure).
"""
import argparse
import asyncio
import glob
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sip import KAMAILIO, SipError, SipPeers  # noqa: E402

results = []


def check(cond, what, detail=''):
    results.append(bool(cond))
    print(('PASS ' if cond else 'FAIL ') + what + ('' if cond or not detail else ': ' + detail), flush=True)


def dig(*args):
    r = subprocess.run(['dig', '+time=2', '+tries=1', '@127.0.0.53'] + list(args), capture_output=True, text=True)
    return r.stdout


async def checks(peers, log):
    kam = '%s:%d' % KAMAILIO
    out = dig('+short', '-t', 'NAPTR', 'simple.test')
    check('SIP+D2U' in out and 'SIP+D2T' in out, 'dns: NAPTR simple.test has D2U and D2T', out)
    out = dig('+short', '-t', 'SRV', '_sip._tcp.sip.test')
    check('5080 gw.sip.test' in out, 'dns: SRV _sip._tcp.sip.test -> gw.sip.test:5080', out)
    out = dig('+short', '-t', 'SRV', '_sip._udp.failover.test')
    check('10 10 5060 dead.failover.test' in out and '20 10 5060 live.failover.test' in out,
          'dns: SRV failover.test: dead target priority 10, live target priority 20', out)
    out = dig('nowhere.test')
    check('status: NXDOMAIN' in out, 'dns: nowhere.test is NXDOMAIN', out)
    out = dig('example.com')
    check('status: REFUSED' in out, 'dns: names outside .test are refused, never forwarded', out)

    mark = peers.bob.trace.mark()
    body = 'héllo ✓ 日本\r\nsecond line'
    r = await peers.message(kam, 'sip:bob@simple.test', 'sip:carol@simple.test', 'sip:bob@simple.test',
                            'text/plain;charset=UTF-8', body, expect=(200,))
    check(r.status == 200, 'kamailio: MESSAGE to registered bob answered 200', 'status %s (%s)' % (r.status, r.out_path))
    try:
        m = await peers.bob.trace.expect(lambda m: m.uri_of('from') == 'sip:carol@simple.test', 3, mark)
        check(m.body == body.encode(), 'kamailio: bob received the exact body bytes', repr(m.body))
    except SipError as e:
        check(False, 'kamailio: bob received the exact body bytes', str(e))

    mark = peers.bob.trace.mark()
    big = ('large-over-tcp ' * 200)[:2000]
    r = await peers.message(kam, 'sip:bob@simple.test', 'sip:carol@simple.test', 'sip:bob@simple.test',
                            'text/plain;charset=UTF-8', big, expect=(200,), transport='t1')
    check(r.status == 200, 'kamailio: 2000-byte MESSAGE over TCP answered 200', 'status %s (%s)' % (r.status, r.out_path))
    try:
        m = await peers.bob.trace.expect(lambda m: len(m.body) == 2000, 3, mark)
        line = await peers.kamailio_log.expect(r'REQ MESSAGE .*/tcp\) ci=%s ' % m.call_id.replace('.', r'\.'), 3)
        check(True, 'kamailio: its log shows the transport (%s)' % line.split('(src ')[-1].split(')')[0])
    except SipError as e:
        check(False, 'kamailio: large MESSAGE relayed and logged with /tcp', str(e))

    r = await peers.message(kam, 'sip:nobody@simple.test', 'sip:carol@simple.test', 'sip:nobody@simple.test',
                            'text/plain', 'to nobody', expect=(404,))
    check(r.status == 404, 'kamailio: MESSAGE to an unregistered user answered 404', 'status %s' % r.status)

    mark = peers.gateway_stub.trace.mark()
    kmark = peers.kamailio_log.mark()
    r = await peers.message(kam, 'sip:alice*xmpp.test@sip.test', 'sip:bob@simple.test', 'sip:alice*xmpp.test@sip.test',
                            'text/plain', 'to the gateway', expect=(200,))
    check(r.status == 200, 'kamailio: MESSAGE for sip.test relayed and answered 200', 'status %s' % r.status)
    try:
        await peers.gateway_stub.trace.expect(lambda m: m.body == b'to the gateway', 3, mark)
        await peers.kamailio_log.expect(r'SEND MESSAGE sip:alice\*xmpp\.test@sip\.test to 127\.0\.0\.1:5080/', 3, kmark)
        await peers.dns_log.expect(r'query\[(NAPTR|SRV)\] (sip\.test|_sip\._udp\.sip\.test) from 127\.0\.0\.1', 3)
        check(True, 'kamailio: found 127.0.0.1:5080 for sip.test through the test DNS')
    except SipError as e:
        check(False, 'kamailio: found 127.0.0.1:5080 for sip.test through the test DNS', str(e))

    out = dig('+short', '-t', 'SRV', '_sip._udp.refuse.test')
    check('5060 uas.refuse.test' in out, 'dns: SRV _sip._udp.refuse.test -> uas.refuse.test:5060', out)

    # presence: Kamailio keeps publications for simple.test and, for xsgw's publish_to, for sip.test
    body = ('<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" '
            'entity="%s"><tuple id="t1"><status><basic>open</basic></status></tuple></presence>')
    for aor in ('sip:carol@simple.test', 'sip:alice*xmpp.test@sip.test'):
        kmark = peers.kamailio_log.mark()
        r = await peers.uac('uac_publish.xml', kam, (200,), aor=aor, expires='60', body=body % aor)
        check(r.status == 200 and r.final.header('sip-etag') and not peers.kamailio_log.grep(r'SEND PUBLISH', kmark),
              'kamailio: PUBLISH %s kept by its presence server (200 with SIP-ETag, not relayed)' % aor,
              'status %s (%s)' % (r.status, r.trace_path))
    try:
        b = await peers.baresip('carol', 'carol', 5092, 4444)
        answer = await b.command('contacts')
        check(answer.get('ok'), 'baresip: registered as carol@simple.test, answers on ctrl_tcp')
    except SipError as e:
        check(False, 'baresip: registered as carol@simple.test, answers on ctrl_tcp', str(e))

    mark = peers.failover.trace.mark()
    r = await peers.message('127.0.0.4:5060', 'sip:bob@failover.test', 'sip:carol@simple.test', 'sip:bob@failover.test',
                            'text/plain', 'to failover', expect=(200,))
    check(r.status == 200 and peers.failover.trace.received(mark),
          'failover.test: the live SRV target (sipp on 127.0.0.4:5060) answers', 'status %s' % r.status)


async def main_async(workdir):
    peers_dir = os.path.join(workdir, 'peers')
    if os.path.isdir(peers_dir):
        shutil.rmtree(peers_dir)
    os.makedirs(peers_dir)
    logf = open(os.path.join(workdir, 'run.log'), 'w', buffering=1)
    t0 = time.monotonic()

    def log(text):
        logf.write('%8.3f %s\n' % (time.monotonic() - t0, text))

    peers = SipPeers(peers_dir, log)
    try:
        try:
            await peers.start(gateway_stub=True)
            check(True, 'peers: dnsmasq, kamailio, sipp UASes up and bob registered (%.2fs)' % peers.start_time)
        except SipError as e:
            check(False, 'peers: start', str(e))
            return
        await checks(peers, log)
    finally:
        await peers.stop()
        failed = results.count(False)
        print('# %.1fs in all' % (time.monotonic() - t0))
        if failed:
            print('# logs:')
            for p in sorted(glob.glob(os.path.join(workdir, '**', '*.*'), recursive=True)):
                if p.endswith(('.log', '.msg', '.out', '.err')):
                    print('#   %s' % p)
        print('%d passed, %d failed' % (results.count(True), failed), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--workdir', required=True)
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    asyncio.run(main_async(os.path.abspath(args.workdir)))
    return 0 if results and all(results) else 1


if __name__ == '__main__':
    sys.exit(main())
