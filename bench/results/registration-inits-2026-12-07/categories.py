# ruff: noqa  (a measurement script kept as it was run)
# ../registration-cost-2026-12-06/profile/categories.py, the loop thread found in any of the first three frames (py-spy --subprocesses names the process first)
import collections,re,sys
rules=[
 ('kernel: socket send', r'sendmsg \(libc|write \(libc|sendto \(libc'),
 ('kernel: thread wake (sem_post)', r'sem_post'),
 ('getpid', r'getpid'),
 ('sqlite', r'sqlite3|_sqlite3'),
 ('json', r'json/|_json'),
 ('codec: diameter (compiled)', r'CPyDef_(decoding|encoding|templates|wire|vendor|avps|messages)_'),
 ('codec: mipv4', r'proto/mip/|CPyDef_(extensions|mip_)'),
 ('hmac/hashlib', r'hmac|hashlib|_hashlib'),
 ('roles (compiled core)', r'CPyDef_(foreign_agent|aaa_home|aaa_foreign|home_agent|dispatch|vpn|handover|peers|vpn_policy|fa_prepare|simultaneous|correspondent)'),
 ('thread pool submit', r'ThreadPoolExecutor|run_in_executor|concurrent/futures|threading.py'),
 ('persistence (py)', r'persistence.py|adapters/state.py|core/persist.py'),
 ('store (py)', r'adapters/store.py'),
 ('metrics', r'metrics|prometheus'),
 ('logging', r'logging/|logtext'),
 ('dataclasses', r'dataclasses.py|__create_fn__'),
 ('diameter conn/peer (py)', r'diameter_conn.py|diameter_peer.py|diameter_dup.py|diameter_links.py'),
 ('mip transport/io (py)', r'mip_transport.py|mip_io.py'),
 ('executor/gateways (py)', r'executor.py|gateways.py'),
 ('asyncio (py+C)', r'asyncio/|_asyncio'),
 ('uvloop', r'loop.c|uv_|uv__|libuv'),
]
c=collections.Counter(); tot=0
for line in open(sys.argv[1]):
    stack,n=line.rstrip().rsplit(' ',1); n=int(n)
    fr=stack.split(';')
    if not any("mipvpn-loop" in x for x in fr[:3]): continue
    tot+=n; cat='other'
    for f in reversed(fr):
        hit=None
        for name,rx in rules:
            if re.search(rx,f): hit=name;break
        if hit: cat=hit;break
    c[cat]+=n
for k,v in c.most_common(): print('%5d %5.1f%% %s'%(v,100*v/tot,k))
