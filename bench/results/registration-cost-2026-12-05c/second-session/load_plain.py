# ruff: noqa
import importlib, pickle
def _cls(mod, name):
    o = importlib.import_module(mod)
    for p in name.split('.'): o = getattr(o, p)
    return o
def build(x):
    if isinstance(x, tuple) and x and isinstance(x[0], str) and x[0].startswith('__'):
        k = x[0]
        if k == '__dc__': return _cls(x[1], x[2])(**{n: build(v) for n, v in x[3].items()})
        if k == '__nt__': return _cls(x[1], x[2])(*[build(v) for v in x[3]])
        if k == '__t__': return tuple(build(v) for v in x[1])
        if k == '__en__': return _cls(x[1], x[2])(x[3])
    if isinstance(x, list): return [build(v) for v in x]
    if isinstance(x, dict): return {k: build(v) for k, v in x.items()}
    return x
def load(path): return build(pickle.load(open(path, 'rb')))
