# ruff: noqa  (a measurement script kept as it was run)
"""The event-loop thread's py-spy samples whose innermost dataclasses frame is replace,
a generated __eq__/__hash__ or a generated __init__: python replace_share.py STACKS"""
import re, sys, collections
c = collections.Counter(); tot = 0
for line in open(sys.argv[1]):
    stack, n = line.rstrip().rsplit(' ', 1); fr = stack.split(';'); n = int(n)
    if not any("mipvpn-loop" in x for x in fr[:3]): continue
    tot += n
    hit = [re.sub(r' \(.*', '', f) for f in fr if re.search(r'dataclasses.py|__create_fn__', f)]
    if hit: c[hit[0].split('.')[-1]] += n
print("loop samples", tot)
for k, v in c.most_common(): print("%4d %5.1f%% %s" % (v, 100 * v / tot, k))
