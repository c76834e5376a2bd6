# ruff: noqa  (a measurement script kept as it was run; made from ../registration-layout-2026-12-06/ir_harness.py)
# ruff: noqa  (a measurement script kept as it was run)
"""registration-cost-2026-12-05d/ir_harness.py with one change (H15_RENEW=1): the N
measured registrations are renewals, each of the WARM users (WARM >= N) registering
again at the FA it registered at, after a 3.5 s pause (the FA's retransmission hold is
3 s); the drivers count their calls (no log).  Without H15_RENEW: as the original.

The original's text: In-process harness: the controller runtime (as bench.registration --serve: every role,
Diameter over loopback TCP, restart persistence to a WAL file) and WARM + N sequential
registrations (one outstanding) over UDP loopback, each user once.  Under callgrind with
H15_CG=1 it zeroes the counters after the WARM registrations (callgrind_control -z) and
dumps them after the N others (callgrind_control -d): Ir of N registrations.
Usage: python ir_harness.py N [WARM]  (see ir.sh; registration-cost-2026-12-05b's
ir_harness2.py, + the build line).  Prints the wall time between the
zeroing and the dump; H15_IDLE=S: after the WARM ones, S seconds idle instead of the N
(the Ir the runtime spends per second when idle: its periodic work)."""
import asyncio, os, shutil, socket, sys, tempfile, time
from pathlib import Path
from bench.registration_server import (free_port_topology, user_nai, USER_BASE, SPI, KEY,
                                       RRP, build_user_rrq)
from controller.core.aaa_home import Destination, UserRecord, VpnProfile
from controller.core.vpn import QosSpec, SecuritySpec
from controller.testing.gateways import RecordingGateway
from controller.runtime import Runtime
from controller.proto import mip

CALLS = {"add": 0, "promote": 0, "rekey": 0, "remove": 0}
class G(RecordingGateway):
    def add_tunnel(self, side, timeout=5.0): CALLS["add"] += 1; return 0.0
    def remove_tunnel(self, tunnel_id): CALLS["remove"] += 1
    def promote_tunnel(self, side, timeout=2.0, rekey=False, wait=True):
        CALLS["rekey" if rekey else "promote"] += 1; return 0.0
    def add_prepared(self, side, timeout=5.0): CALLS["promote"] += 1; return 0.0

n = int(sys.argv[1]); warm = int(sys.argv[2]) if len(sys.argv) > 2 else 0; users = n + warm
RENEW = bool(os.environ.get("H15_RENEW"))
if RENEW:
    assert warm >= n; users = warm
topo = free_port_topology(None)
run_dir = tempfile.mkdtemp(prefix="h15-ir-")
VPN_DB = ":memory:"
STATE = str(Path(run_dir) / "state.db")
if os.environ.get("H15_SHARED"):   # as `mipvpn controller` by default: state in the VPN DB file
    VPN_DB = STATE = str(Path(run_dir) / "vpn.db")
rt = Runtime(topo, run_dir, VPN_DB, rest=None, gateway_factory=G, flow_sink=lambda d, m: None,
             fa_ingress=True, advertise=False, persist=True, state_path=STATE)
conf = next(iter(topo.vpn_profiles.values()))
dests = tuple(Destination(d.prefix, d.gateway) for d in conf.destinations)
sec = SecuritySpec(conf.security.ike, conf.security.esp)
for i in range(users):
    rt.store.put_user(UserRecord(user_nai(i), str(USER_BASE + i), "ha", SPI, KEY))
    rt.store.put_profile(VpnProfile(user_nai(i), dests, sec, QosSpec()))
if os.environ.get("H15X_INLINE"):
    from bench.registration_server import InlineExecutor
    for _n in list(rt.gateways_ctl.workers):
        rt.gateways_ctl.workers[_n] = InlineExecutor()
rt.start()
assert asyncio.run_coroutine_threadsafe(rt.wait_links(), rt.loop).result(600)
ha = topo.gateways["ha"].core.ip
targets = [(tuple(ep.address), topo.gateways[k.split(":", 1)[1]].core.ip) for k, ep in sorted(rt.ingress.items())]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); s.settimeout(float(os.environ.get("H15_TIMEOUT", "600")))
ok = 0; last = 0
import subprocess
for k in range(n + warm):
    if k == warm and warm and os.environ.get('H15_CG'):
        time.sleep(3.5 if RENEW else 1.0)
        calls_before = dict(CALLS)
        import gc; gc.collect(); BEFORE = {id(o) for o in gc.get_objects()}
        print('zeroed', flush=True)
        T0 = time.monotonic()
        if os.environ.get('H15_IDLE'):
            time.sleep(float(os.environ['H15_IDLE'])); break
    i = k % users
    dst, coa = targets[i % len(targets)]   # (the original: k; the same for first registrations)
    ident = max(mip.ntp_identification(time.time()), last + 256); last = ident
    s.sendto(build_user_rrq(i, coa, ha, ident), dst)
    while True:
        data = s.recv(2048)
        _t, code, _l, home, _h, rid = RRP.unpack_from(data)
        if rid == ident:
            ok += code == 0
            break
from controller import compiled
print("build", compiled.STATUS.describe(), "loaded", len(compiled.loaded_compiled()), flush=True)
print("registrations", n + warm, "accepted", ok, "measured wall s", round(time.monotonic() - T0, 2), flush=True)
if warm:
    print("gateway calls in the measured ones", {k: CALLS[k] - calls_before[k] for k in CALLS}, flush=True)
if os.environ.get("H15_CG"):
    import gc, collections
    time.sleep(0.5); gc.collect()
    new = [o for o in gc.get_objects() if id(o) not in BEFORE]
    c = collections.Counter(type(o).__module__ + '.' + type(o).__qualname__ for o in new)
    print('new tracked objects', len(new), 'per renewal', len(new)/n)
    for k, v in c.most_common(40): print(f'{v/n:8.2f} {k}')
    tups=[o for o in new if type(o) is tuple][:8]
    for t in tups: print('TUP', repr(t)[:200])
    lists=[o for o in new if type(o) is list][:5]
    for t in lists: print('LIST', repr(t)[:200])
rt.stop()
shutil.rmtree(run_dir, True)
os._exit(0)
