set -e
# root: unshare -n bash stale_flows.sh  (a private OVS; prints the flows still naming the moved port after each del-port)
cd /work/main
export PYTHONPATH=/work/main
.venv/bin/python - <<'PY'
import subprocess, time, os, re
from mininet_scripts.ovs import PrivateOvs
from mininet_scripts.ovsdb import OvsdbClient, UnixctlClient
def sh(c): return subprocess.run(c, shell=True, capture_output=True, text=True)
with PrivateOvs('/tmp/s10ovs/run-%d' % time.time_ns()) as ovs:
    for b in ('b1','b2'):
        ovs.vsctl('add-br', b, '--', 'set', 'bridge', b, 'datapath_type=netdev')
    for i,(b,ip) in enumerate([('b1','10.9.0.1'),('b1','10.9.0.2'),('b2','10.9.0.3')], start=1):
        sh(f'ip netns add h{i}; ip link add h{i}-e type veth peer name s{i}-e; ip link set h{i}-e netns h{i}; ip -n h{i} addr add {ip}/24 dev h{i}-e; ip -n h{i} link set h{i}-e up; ip -n h{i} link set lo up; ip link set s{i}-e up')
        ovs.vsctl('add-port', b, f's{i}-e', '--', 'set', 'interface', f's{i}-e', f'ofport_request={i}')
    ovs.vsctl('add-port','b1','p1','--','set','interface','p1','type=patch','options:peer=p2')
    ovs.vsctl('add-port','b2','p2','--','set','interface','p2','type=patch','options:peer=p1')
    for b in ('b1','b2'): ovs.ofctl('add-flow', b, 'actions=NORMAL')
    os.environ.update(ovs.full_env())
    pings = [subprocess.Popen(f'ip netns exec h{a} ping -q -i 0.002 -w 30 10.9.0.{b}', shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for a,b in ((1,3),(3,1),(2,1),(1,2))]
    time.sleep(1)
    db = OvsdbClient(); ctl = UnixctlClient()
    def odp(name):
        m = re.search(r'port (\d+): %s\b' % re.escape(name), ctl.call('dpctl/show'))
        return int(m.group(1)) if m else None
    stale_total = 0
    where = 'b1'
    for k in range(20):
        n = odp('s1-e')
        to = 'b2' if where == 'b1' else 'b1'
        found = []
        def check():
            txt = ctl.call('dpctl/dump-flows', '-m', '--no-names')
            for l in txt.splitlines():
                if not l.startswith('ufid:'): continue
                inp = re.search(r'in_port\((\d+)\)', l); acts = l.split('actions:')[1].split(', dp-extra')[0]
                if (inp and int(inp.group(1)) == n) or re.search(r'(?<![\w.=:x])%d(?![\w.])' % n, acts):
                    found.append(l[:13] + ' ' + (inp.group(0) if inp else '') + ' ' + acts)
        db.move_port('s1-e', where, to, 7, purge=check)
        where = to
        stale_total += len(found)
        print(k, 'odp', n, 'stale after del-port:', len(found), found[:2])
        time.sleep(0.2)
    print('total stale', stale_total)
    for p in pings: p.kill()
    sh('for i in 1 2 3; do ip netns del h$i; done')
PY
