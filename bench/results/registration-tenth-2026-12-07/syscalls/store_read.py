# ruff: noqa  (a measurement script kept as it was run)
"""CPU time of one cached VpnStore.user() read and of its PRAGMA data_version alone."""
import time, tempfile, os, sqlite3
from controller.adapters.store import VpnStore
from controller.core.aaa_home import UserRecord
d = tempfile.mkdtemp()
s = VpnStore(os.path.join(d, "v.db"))
s.put_user(UserRecord("u@x.org", "10.0.0.5", "ha", 256, b"k"*16))
s.user("u@x.org")
N = 20000
t = time.process_time()
for _ in range(N): s.user("u@x.org")
a = (time.process_time() - t) / N * 1e6
t = time.process_time()
for _ in range(N): s._data_version()
b = (time.process_time() - t) / N * 1e6
print(f"user() {a:.2f} us, data_version {b:.2f} us")
