# ruff: noqa  (a measurement script kept as it was run)
"""A registration's six messages, hop by hop in one process: encode then decode the bytes.
Every registration gets new tunnel keys (as the home AAA makes: new VpnInfo values, so
no cache hit across registrations).  CPU us per registration, median of 7 rounds."""
import pickle, sys, time, os, statistics
from dataclasses import replace
from controller.proto.diameter import encoding, decoding
sys.path.insert(0, "/tmp/h15m2"); import load_plain; msgs = load_plain.load(sys.argv[1])
mip = [(m, ids) for m, ids, b in msgs if type(m).__name__ in ('AmRequest','AmAnswer','HaRequest','HaAnswer')]
regs = [mip[i:i+6] for i in range(0, len(mip) - 5, 6)]
def fresh(reg):
    keys = {}
    def rekey(info):
        if info is None: return None
        ts = tuple(replace(t, psk=keys.setdefault(t.psk, os.urandom(len(t.psk)))) for t in info.tunnels)
        return replace(info, tunnels=ts)
    memo = {}
    out = []
    for m, ids in reg:
        vi = getattr(m, 'vpn_info', None)
        if vi is not None:
            if id(vi) not in memo: memo[id(vi)] = rekey(vi)
            m = replace(m, vpn_info=memo[id(vi)])
        else:
            m = replace(m)
        out.append((m, ids))
    return out
N = 300
rounds = []
for r in range(int(sys.argv[2]) if len(sys.argv) > 2 else 7):
    work = [fresh(regs[k % len(regs)]) for k in range(N)]
    t0 = time.process_time()
    for reg in work:
        for m, ids in reg:
            decoding.decode(encoding.encode(m, ids=ids))
    rounds.append((time.process_time() - t0) / N * 1e6)
print(f"codec per registration (6 encodes + 6 decodes): {statistics.median(rounds):.1f} us  rounds {[round(x) for x in rounds]}")
