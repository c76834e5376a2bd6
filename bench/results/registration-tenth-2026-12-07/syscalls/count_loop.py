# ruff: noqa  (a measurement script kept as it was run)
import asyncio, asyncio.events as ev, collections, sys, os, runpy, atexit
C = collections.Counter()
def wrap(name):
    orig = getattr(ev, name)
    def w(*a, **k):
        f = sys._getframe(1)
        C[f"{name} {f.f_code.co_filename.split('/')[-1]}:{f.f_lineno} {f.f_code.co_name} < {f.f_back.f_code.co_name if f.f_back else ''}"] += 1
        return orig(*a, **k)
    setattr(ev, name, w)
    for mod in list(sys.modules.values()):
        if mod and mod.__name__.startswith('asyncio') and getattr(mod, name, None) is orig:
            setattr(mod, name, w)
for n in ('get_running_loop', '_get_running_loop', 'get_event_loop', '_get_event_loop'):
    wrap(n)
import os as _os
_exit = _os._exit
def ex(code):
    for k, v in C.most_common(30): print(v, k, flush=True)
    _exit(code)
_os._exit = ex
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
