# ruff: noqa  (a measurement script kept as it was run)
"""cg/{before,after}-N.txt (annotate.sh's output) -> Ir per renewal, raw and corrected
for the idle runtime (Ir - 0.874 M x measured wall s, registration-cost-2026-12-05c's
constant), and the codec's inclusive Ir per renewal (decode, encode).
python summary.py > summary.txt"""
import re
from pathlib import Path
d = Path(__file__).parent / "cg"
IDLE, N = 0.874e6, 100
ROWS = {"decode": "CPyDef_decoding___decode", "parse_avps": "CPyDef_decoding___parse_avps",
        "_decode_mip": "CPyDef_decoding____decode_mip", "encode": "CPyDef_encoding___encode",
        "diameter_outcome": "CPyDef_dispatch___Dispatch___diameter_outcome"}
n = 1
while (d / f"before-{n}.txt").exists() and (d / f"after-{n}.txt").exists():
    per = {}
    for label in ("before", "after"):
        t = (d / f"{label}-{n}.txt").read_text()
        ir = int(re.search(r"^([\d,]+) \(100.0%\)  PROGRAM TOTALS", t, re.M).group(1).replace(",", ""))
        wall = float(re.search(r"measured wall s ([\d.]+)", t).group(1))
        rows = {k: int(re.search(r"^ *([\d,]+) \( *[\d.]+%\)  " + v + r"$", t, re.M).group(1).replace(",", ""))
                for k, v in ROWS.items()}
        per[label] = (ir, (ir - IDLE * wall), rows)
        print(f"run {n} {label:6s} Ir {ir / 1e6:.1f} M, wall {wall} s; per renewal raw {ir / N / 1e6:.3f} M, "
              f"corrected {(ir - IDLE * wall) / N / 1e6:.3f} M; codec per renewal: "
              + ", ".join(f"{k} {v / N / 1e3:.0f} k ({v / ir:.1%})" for k, v in rows.items()))
    b, a = per["before"], per["after"]
    codec_b = b[2]["decode"] + b[2]["encode"]; codec_a = a[2]["decode"] + a[2]["encode"]
    print(f"run {n} after/before: raw {a[0] / b[0]:.4f}, corrected {a[1] / b[1]:.4f}; "
          f"decode {a[2]['decode'] / b[2]['decode']:.3f}, encode {a[2]['encode'] / b[2]['encode']:.3f}, "
          f"decode+encode {codec_b / N / 1e3:.0f} k -> {codec_a / N / 1e3:.0f} k per renewal "
          f"({codec_a / codec_b - 1:+.1%})")
    n += 1
