# ruff: noqa  (a measurement script kept as it was run)
"""Run the in-process harness (as ir_harness) for N registrations, capture every Diameter
message encoded (dataclass) and its bytes; pickle them."""
import asyncio, os, pickle, shutil, socket, sys, tempfile, time
from pathlib import Path
from bench.registration_server import (free_port_topology, user_nai, USER_BASE, SPI, KEY, RRP, build_user_rrq)
from controller.core.aaa_home import Destination, UserRecord, VpnProfile
from controller.core.vpn import QosSpec, SecuritySpec
from controller.testing.gateways import RecordingGateway
from controller.runtime import Runtime
from controller.proto import mip
from controller.proto.diameter import encoding
import controller.adapters.diameter_conn as dc
captured = []
from controller.proto.diameter import templates
orig = templates.encode_fast
def enc(msg):
    b = orig(msg); captured.append((msg, None, b)); return b
templates.encode_fast = enc
for modname in list(sys.modules):
    m = sys.modules[modname]
    if modname.startswith('controller') and getattr(m, 'encode_fast', None) is orig:
        setattr(m, 'encode_fast', enc); print('patched', modname)
class G(RecordingGateway):
    def add_tunnel(self, side, timeout=5.0): return 0.0
    def remove_tunnel(self, tunnel_id): pass
n = int(sys.argv[1]); users = n
topo = free_port_topology(None)
run_dir = tempfile.mkdtemp(prefix="h15x-cap-")
rt = Runtime(topo, run_dir, ":memory:", rest=None, gateway_factory=G, flow_sink=lambda d, m: None,
             fa_ingress=True, advertise=False, persist=True, state_path=str(Path(run_dir) / "state.db"))
conf = next(iter(topo.vpn_profiles.values()))
dests = tuple(Destination(d.prefix, d.gateway) for d in conf.destinations)
sec = SecuritySpec(conf.security.ike, conf.security.esp)
for i in range(users):
    rt.store.put_user(UserRecord(user_nai(i), str(USER_BASE + i), "ha", SPI, KEY))
    rt.store.put_profile(VpnProfile(user_nai(i), dests, sec, QosSpec()))
rt.start()
assert asyncio.run_coroutine_threadsafe(rt.wait_links(), rt.loop).result(600)
ha = topo.gateways["ha"].core.ip
targets = [(tuple(ep.address), topo.gateways[k.split(":", 1)[1]].core.ip) for k, ep in sorted(rt.ingress.items())]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); s.settimeout(60)
ok = 0; last = 0
for k in range(n):
    i = k % users
    dst, coa = targets[k % len(targets)]
    ident = max(mip.ntp_identification(time.time()), last + 256); last = ident
    s.sendto(build_user_rrq(i, coa, ha, ident), dst)
    while True:
        data = s.recv(2048)
        _t, code, _l, home, _h, rid = RRP.unpack_from(data)
        if rid == ident:
            ok += code == 0; break
print("registrations", n, "accepted", ok, "captured", len(captured), flush=True)
with open(sys.argv[2], 'wb') as f: pickle.dump(captured, f)
rt.stop(); shutil.rmtree(run_dir, True); os._exit(0)
