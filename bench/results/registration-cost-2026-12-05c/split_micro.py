# ruff: noqa  (a measurement script kept as it was run)
"""encode-only and decode-only CPU us per registration (6 messages), rekeyed as codec_micro."""
import pickle, sys, time, os, statistics
sys.argv = [sys.argv[0]] + sys.argv[1:]
exec(open('/tmp/h15m/codec_micro.py').read().split("N = 300")[0])
N = 300
enc_r, dec_r = [], []
for r in range(int(sys.argv[2])):
    work = [fresh(regs[k % len(regs)]) for k in range(N)]
    t0 = time.process_time()
    bs = [encoding.encode(m, ids=ids) for reg in work for m, ids in reg]
    t1 = time.process_time()
    for b in bs: decoding.decode(b)
    t2 = time.process_time()
    enc_r.append((t1 - t0) / N * 1e6); dec_r.append((t2 - t1) / N * 1e6)
print(f"encode {statistics.median(enc_r):.1f} decode {statistics.median(dec_r):.1f} us/reg")
