# ruff: noqa  (a measurement script kept as it was run)
import collections, sys, runpy, os
import controller.adapters.store as st
C = collections.Counter(); ON = [False]
orig_init = st.VpnStore.__init__
def init(self, *a, **k):
    orig_init(self, *a, **k)
    self._db.set_trace_callback(lambda q: C.update([q.split('(')[0][:60]]) if ON[0] else None)
st.VpnStore.__init__ = init
import time as _t
_sleep = _t.sleep
def sl(x):
    if x == 3.5: ON[0] = True
    return _sleep(x)
_t.sleep = sl
_exit = os._exit
def ex(code):
    for k, v in C.most_common(20): print(v, k, flush=True)
    _exit(code)
os._exit = ex
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
