# ruff: noqa  (a measurement script kept as it was run)
import json, os, shutil, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, "/work/main")
import yaml
import importlib.util as iu; sp=iu.spec_from_file_location("t1000","/tmp/s13/t1000.py"); t=iu.module_from_spec(sp); sp.loader.exec_module(t)
n = int(sys.argv[1])
for i in range(n):
    d = Path(f"/tmp/s13/run{i}-{time.strftime('%H%M%S')}")
    d.mkdir(parents=True)
    spec_file = d / "seamless-s.yaml"; spec_file.write_text(yaml.safe_dump(t.SPEC))
    out = d / "result.json"
    cmd = f"ip link set lo up && exec {sys.executable} -c '{t.DRIVER}' {spec_file} {out}"
    t0 = time.time()
    load0 = open("/proc/loadavg").read().split()[:3]
    p = subprocess.run(["unshare", "-n", "--", "bash", "-c", cmd], cwd="/work/main",
                       capture_output=True, text=True, timeout=600)
    (d / "out.txt").write_text(p.stdout + p.stderr)
    ok = None
    if out.exists():
        res = json.loads(out.read_text())
        ok = res["ok"]
        rd = Path(res.get("run_dir_kept"))
        if rd.exists():
            shutil.copytree(rd, d / "rundir", ignore=shutil.ignore_patterns("*.vici", "*.sock", "*.key", "*.pem"))
            shutil.rmtree(rd, ignore_errors=True)
        print(i, "ok" if ok else res["failed"], round(time.time() - t0), load0, flush=True)
        gaps = [(m["mn"], m["gap_ms"]["cn_to_mn"], m["gap_ms"]["mn_to_cn"]) for m in res["moves"]]
        print("   gaps", gaps, flush=True)
    else:
        print(i, "no result", flush=True)
