# ruff: noqa  (a measurement script)
"""msgs.pkl (dataclass pickles) -> msgs_plain.pkl: every dataclass as ('__dc__', module, name, fields),
rebuilt by its constructor on load (mypyc-compiled frozen dataclasses cannot be unpickled by setattr)."""
import dataclasses, pickle, sys, enum
def plain(x):
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return ('__dc__', type(x).__module__, type(x).__qualname__,
                {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x) if f.init})
    if isinstance(x, tuple) and type(x) is not tuple:  # NamedTuple
        return ('__nt__', type(x).__module__, type(x).__qualname__, tuple(plain(v) for v in x))
    if isinstance(x, tuple): return ('__t__', tuple(plain(v) for v in x))
    if isinstance(x, list): return [plain(v) for v in x]
    if isinstance(x, dict): return {k: plain(v) for k, v in x.items()}
    if isinstance(x, enum.Enum): return ('__en__', type(x).__module__, type(x).__qualname__, x.value)
    return x
msgs = pickle.load(open(sys.argv[1], 'rb'))
pickle.dump([plain(m) for m in msgs], open(sys.argv[2], 'wb'))
