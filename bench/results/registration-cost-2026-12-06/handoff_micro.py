# ruff: noqa  (a measurement script kept as it was run)
import asyncio, threading, queue, time, os, sys, resource
from concurrent.futures import ThreadPoolExecutor
import uvloop

def noop(x): return 0.0

class Worker:
    def __init__(self, name):
        self.q = queue.SimpleQueue()
        self.t = threading.Thread(target=self._run, name=name, daemon=True); self.t.start()
    def call(self, loop, fn, *args):
        fut = loop.create_future()
        self.q.put((loop, fut, fn, args))
        return fut
    def _run(self):
        get = self.q.get
        while True:
            item = get()
            if item is None: return
            loop, fut, fn, args = item
            try:
                r = fn(*args)
            except BaseException as e:
                loop.call_soon_threadsafe(_fail, fut, e)
            else:
                loop.call_soon_threadsafe(_done, fut, r)

def _done(fut, r):
    if not fut.done(): fut.set_result(r)
def _fail(fut, e):
    if not fut.done(): fut.set_exception(e)

def thread_cpu():
    out = {}
    for tid in os.listdir('/proc/self/task'):
        with open(f'/proc/self/task/{tid}/stat') as f: s = f.read()
        name = open(f'/proc/self/task/{tid}/comm').read().strip()
        parts = s.rsplit(')', 1)[1].split()
        out[name] = out.get(name, 0) + (int(parts[11]) + int(parts[12]))
    return out

async def busy(n):   # keep the loop busy as in the server: some python work between calls
    s = 0
    for i in range(n): s += i
    return s

async def main(kind, n):
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(1, thread_name_prefix='w')
    w = Worker('w_x')
    async def one():
        if kind == 'pool':
            await loop.run_in_executor(pool, noop, 1)
        else:
            await w.call(loop, noop, 1)
        await busy(300)
    # 8 concurrent chains
    async def chain(k):
        for i in range(k): await one()
    c0 = thread_cpu(); t0=time.perf_counter()
    await asyncio.gather(*[chain(n//8) for _ in range(8)])
    c1 = thread_cpu(); el = time.perf_counter()-t0
    hz = os.sysconf('SC_CLK_TCK')
    d = {k: (c1.get(k,0)-c0.get(k,0))/hz/n*1e6 for k in c1}
    print(kind, {k: round(v,1) for k,v in d.items() if v>0.05}, 'wall us/call', round(el/n*1e6,1))

kind = sys.argv[1]
uvloop.install()
asyncio.run(main(kind, 40000))
