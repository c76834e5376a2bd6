"""Bounded fuzz run of the Mobile IPv4 and Diameter codecs (hostile input, issue 5).

Feeds at least ``--inputs`` inputs (default 100,000) to each codec and checks that
nothing but the codec's own error escapes:

- **mip**: ``mip.decode`` (registration and binding messages), ``verify_auth`` /
  ``mn_aaa_auth_offsets``, ``decode_icmp`` (agent discovery) and
  ``decode_tunnel_extension`` (the VPN tunnel CVSE).  Allowed: ``MipDecodeError``.
  What decodes must re-encode to bytes that decode to the same message.
- **diameter**: ``diameter.decode``.  Allowed: ``DiameterDecodeError`` -- but not via
  the codec's defensive catch-all (5012 "undecodable", which would hide a bug).  An
  error with a readable request header must give an error answer that encodes and
  parses (what ``DiameterNode`` sends).  What decodes must re-encode and decode the
  same (``DiameterEncodeError`` is allowed only for values python-diameter cannot
  encode, e.g. a Result-Code >= 2^31; counted apart).

Engines: ``mutate`` (default; seeds = valid messages built from a seeded RNG, then 1-4
mutations each: bit flips, interesting bytes, inserts, deletes, truncation, duplicated
chunks, splices, length-field rewrites, or plain random bytes) and ``atheris``
(coverage-guided libFuzzer, when the ``atheris`` package is installed).

Prints inputs, decoded/rejected counts, exceptions by type and inputs/s per codec;
exits 1 if anything unexpected happened (the first offending inputs are printed as hex).

    python -m bench.fuzz_codecs [--quick] [--inputs N] [--seed S] [--codec mip|diameter]
        [--engine mutate|atheris] [--json FILE]
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo
from controller.proto import diameter as dia
from controller.proto import mip

QUICK_INPUTS = 2_000
FULL_INPUTS = 100_000
INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)


@dataclass
class Report:
    codec: str
    inputs: int = 0
    decoded: int = 0
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    unexpected: collections.Counter[str] = field(default_factory=collections.Counter)
    notes: collections.Counter[str] = field(default_factory=collections.Counter)
    samples: list[tuple[str, str]] = field(default_factory=list)   # (what, hex input)
    seconds: float = 0.0

    def fail(self, what: str, data: bytes) -> None:
        self.unexpected[what] += 1
        if len(self.samples) < 5:
            self.samples.append((what, data.hex()))

    def to_json(self) -> dict[str, Any]:
        return {"codec": self.codec, "inputs": self.inputs, "decoded": self.decoded,
                "rejected": dict(self.rejected), "unexpected": dict(self.unexpected),
                "notes": dict(self.notes), "samples": self.samples,
                "seconds": round(self.seconds, 3),
                "inputs_per_s": round(self.inputs / self.seconds) if self.seconds else 0}


# ----------------------------------------------------------------- seeds


def _ip4(r: random.Random) -> str:
    return str(ipaddress.IPv4Address(r.getrandbits(32)))


def _ip(r: random.Random) -> str:
    return _ip4(r) if r.random() < 0.8 else str(ipaddress.IPv6Address(r.getrandbits(128)))


def _text(r: random.Random, lo: int = 0, hi: int = 20) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789.-@_é€😀"
    return "".join(r.choice(alphabet) for _ in range(r.randint(lo, hi)))


def _ident(r: random.Random) -> str:
    return "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(
        r.randint(1, 12))) + "." + r.choice(["example", "home.example", "a.example"])


def _blob(r: random.Random, hi: int) -> bytes:
    return r.randbytes(r.randint(0, hi))


def _mip_extension(r: random.Random) -> Any:
    k = r.randrange(11)
    if k == 0:
        return mip.Pad()
    if k == 1:
        return mip.NaiExtension(_text(r, 1, 40) or "a")
    if k in (2, 3, 4, 5):
        cls = (mip.MnHaAuth, mip.MnFaAuth, mip.FaHaAuth, mip.RoAuth)[k - 2]
        return cls(r.getrandbits(32), _blob(r, 20))
    if k == 6:
        return mip.GeneralizedAuth(r.choice([1, 1, 2, r.randrange(256)]), r.getrandbits(32),
                                   _blob(r, 20))
    if k == 7:
        return mip.ChallengeExtension(_blob(r, 32))
    if k == 8:
        return mip.CriticalVendorExtension(r.choice([mip.MIPVPN_VENDOR_ID, r.getrandbits(32)]),
                                           r.randrange(5), _blob(r, 40))
    if k == 9:
        return mip.NormalVendorExtension(r.getrandbits(32), r.getrandbits(16), _blob(r, 40))
    return mip.UnknownExtension(r.choice([129, 130, 133, 200, 255]), _blob(r, 30))


def _tunnel(r: random.Random) -> TunnelSpec:
    def end() -> TunnelEnd:
        sels = tuple(str(ipaddress.IPv4Network((r.getrandbits(32), p), strict=False))
                     for p in (r.randint(0, 32) for _ in range(r.randint(0, 3))))
        return TunnelEnd(_text(r, 1, 10), r.choice(["", _ip4(r)]), sels)
    return TunnelSpec(_text(r, 1, 20), end(), end(), _blob(r, 32),
                      SecuritySpec(_text(r, 1, 25), _text(r, 1, 25)),
                      QosSpec(r.getrandbits(32), r.randrange(64)), r.choice(["", "fa1", "ha"]))


KEY = bytes(range(16))


def mip_seeds(r: random.Random, n: int = 64) -> dict[str, list[bytes]]:
    msgs: list[bytes] = []
    for _ in range(n):
        exts = [_mip_extension(r) for _ in range(r.randint(0, 6))]
        k = r.randrange(6)
        m: Any
        if k == 0:
            m = mip.RegistrationRequest(r.getrandbits(8), r.getrandbits(16), _ip4(r), _ip4(r),
                                        _ip4(r), r.getrandbits(64), exts)
        elif k == 1:
            m = mip.RegistrationReply(r.getrandbits(8), r.getrandbits(16), _ip4(r), _ip4(r),
                                      r.getrandbits(64), exts)
        elif k == 2:
            m = mip.BindingWarning(_ip4(r), [_ip4(r) for _ in range(r.randint(0, 4))])
        elif k == 3:
            m = mip.BindingRequest(_ip4(r), r.getrandbits(64))
        elif k == 4:
            m = mip.BindingUpdate(r.getrandbits(8), r.getrandbits(16), _ip4(r), _ip4(r),
                                  r.getrandbits(64), exts)
        else:
            m = mip.BindingAck(r.getrandbits(8), _ip4(r), r.getrandbits(64))
        raw = mip.encode(m)
        if k in (0, 1) and r.random() < 0.5:
            raw = mip.append_auth(raw, r.choice(list(mip.AuthKind)), 256 + r.randrange(1000),
                                  KEY)
        msgs.append(raw)
    icmp = [mip.AgentAdvertisement(_ip4(r), r.randint(-5, 5), r.getrandbits(16),
                                   r.getrandbits(16), r.getrandbits(16), r.getrandbits(16),
                                   [_ip4(r) for _ in range(r.randint(0, 3))],
                                   r.choice([0, 16]), r.choice([None, _blob(r, 16)]),
                                   r.choice([None, [24, 16]])).encode() for _ in range(n // 4)]
    icmp.append(mip.AgentSolicitation().encode())
    tunnels = [mip.encode_tunnel_extension(_tunnel(r), KEY, 7).data for _ in range(n // 4)]
    return {"msg": msgs, "icmp": icmp, "tunnel": tunnels}


def _vpn(r: random.Random) -> VpnInfo:
    return VpnInfo(_text(r, 1, 20), r.choice(["", _ip(r)]), _text(r, 0, 8), _text(r, 0, 8),
                   tuple(_tunnel(r) for _ in range(r.randint(0, 2))), _text(r, 0, 8))


def diameter_seeds(r: random.Random, n: int = 64) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(n):
        ids = {"hop_by_hop": r.getrandbits(32), "end_to_end": r.getrandbits(32)}
        k = r.randrange(8)
        m: Any
        if k == 0:
            m = dia.AmRequest(_text(r, 1, 30), _ident(r), _ident(r), _ident(r), _text(r),
                              _blob(r, 60), r.getrandbits(32), r.getrandbits(32),
                              r.getrandbits(32), r.getrandbits(32),
                              home_address=r.choice(["", _ip(r)]),
                              home_agent_address=r.choice(["", _ip(r)]),
                              feature_vector=r.getrandbits(32),
                              destination_host=r.choice(["", _ident(r)]),
                              originating_foreign_aaa=r.choice([None, (_ident(r), _ident(r))]),
                              previous_fa_address=r.choice(["", _ip(r)]),
                              previous_fa=_text(r, 0, 5), foreign_agent=_text(r, 0, 5),
                              service_update=r.random() < 0.5, **ids)
        elif k in (1, 3):
            cls = dia.AmAnswer if k == 1 else dia.HaAnswer
            extra = ({"fa_ha_key": r.choice([None, dia.MsaKey(r.getrandbits(32),
                                                               _blob(r, 20))])}
                     if k == 1 else {})
            m = cls(_text(r, 1, 30), r.choice([2001, 4001, 5001, 3007, r.getrandbits(31)]),
                    _ident(r), _ident(r), user_name=_text(r), reg_reply=_blob(r, 40),
                    home_address=r.choice(["", _ip(r)]),
                    vpn_info=r.choice([None, _vpn(r)]), error_message=_text(r, 0, 10),
                    **extra, **ids)
        elif k == 2:
            m = dia.HaRequest(_text(r, 1, 30), _ident(r), _ident(r), _ident(r),
                              r.choice(["", _ident(r)]), _text(r), _blob(r, 60),
                              r.getrandbits(32), r.randrange(2), r.getrandbits(32),
                              vpn_info=r.choice([None, _vpn(r)]),
                              ha_to_fa_key=r.choice([None, dia.MsaKey(r.getrandbits(32),
                                                                      _blob(r, 20))]),
                              **ids)
        elif k == 4:
            m = dia.Cer(_ident(r), _ident(r), tuple(_ip(r) for _ in range(r.randint(1, 2))),
                        r.getrandbits(32), _text(r), (2,), r.getrandbits(32), **ids)
        elif k == 5:
            m = dia.Cea(r.choice([2001, 5010]), _ident(r), _ident(r), (_ip(r),), **ids)
        elif k == 6:
            m = r.choice([dia.Dwr(_ident(r), _ident(r), **ids),
                          dia.Dwa(2001, _ident(r), _ident(r), **ids)])
        else:
            m = r.choice([dia.Dpr(_ident(r), _ident(r), r.randrange(3), **ids),
                          dia.Dpa(2001, _ident(r), _ident(r), **ids)])
        out.append(dia.encode(m))
    return out


# ----------------------------------------------------------------- mutation


def mutate(r: random.Random, seed: bytes, others: list[bytes], *, diameter: bool) -> bytes:
    if r.random() < 0.05:
        return r.randbytes(r.randint(0, 300))
    b = bytearray(seed)
    for _ in range(r.randint(1, 4)):
        op = r.randrange(10)
        pos = r.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[pos] ^= 1 << r.randrange(8)
        elif op == 1 and b:
            b[pos] = r.choice(INTERESTING)
        elif op == 2:
            b[pos:pos] = r.randbytes(r.randint(1, 16))
        elif op == 3 and b:
            del b[pos:pos + r.randint(1, 16)]
        elif op == 4:
            del b[pos:]
        elif op == 5 and b:
            n = r.randint(1, 32)
            b[pos:pos] = b[pos:pos + n]
        elif op == 6:
            other = r.choice(others)
            cut = r.randrange(len(other) + 1)
            b = b[:pos] + bytearray(other[cut:])
        elif op == 7 and diameter and len(b) >= 28:     # an AVP length field
            p = 20 + 4 * r.randrange((len(b) - 20) // 4) + 5
            b[p:p + 3] = r.choice([0, 1, 7, 8, 12, 0xFFFFFF,
                                   r.getrandbits(24)]).to_bytes(3, "big")
        elif op == 8 and not diameter and len(b) > 2:   # a short extension length byte
            b[pos if pos else 1] = r.choice([0, 1, 2, 3, 4, 5, 0xFF, r.randrange(256)])
        elif op == 9 and b:
            for _ in range(r.randint(2, 8)):
                b[r.randrange(len(b))] = r.randrange(256)
    if diameter and len(b) >= 20 and r.random() < 0.8:   # keep the framing mostly honest
        b += bytes(-len(b) % 4)
        b[0] = 1
        b[1:4] = len(b).to_bytes(3, "big")
    return bytes(b)


# ----------------------------------------------------------------- checks


def check_mip(kind: str, data: bytes, rep: Report) -> None:
    rep.inputs += 1
    try:
        if kind == "msg":
            try:
                msg = mip.decode(data)
            except mip.MipDecodeError:
                rep.rejected["MipDecodeError"] += 1
            else:
                rep.decoded += 1
                if mip.decode(mip.encode(msg)) != msg:
                    rep.fail("re-encode mismatch", data)
            for k in mip.AuthKind:
                if mip.verify_auth(data, k, KEY) not in (True, False):
                    rep.fail("verify_auth returned a non-bool", data)
            try:
                mip.mn_aaa_auth_offsets(data)
            except mip.MipDecodeError:
                pass
        elif kind == "icmp":
            try:
                mip.decode_icmp(data)
                rep.decoded += 1
            except mip.MipDecodeError:
                rep.rejected["MipDecodeError"] += 1
        else:
            ext = mip.CriticalVendorExtension(mip.MIPVPN_VENDOR_ID, mip.CVSE_VPN_TUNNEL, data)
            try:
                spec = mip.decode_tunnel_extension(ext, KEY, 7)
            except mip.MipDecodeError:
                rep.rejected["MipDecodeError"] += 1
            else:
                rep.decoded += 1
                try:
                    again = mip.encode_tunnel_extension(spec, KEY, 7)
                except ValueError:          # e.g. a name over 255 bytes after decoding
                    rep.notes["tunnel re-encode refused"] += 1
                else:
                    if mip.decode_tunnel_extension(again, KEY, 7) != spec:
                        rep.fail("tunnel re-encode mismatch", data)
    except Exception as e:              # noqa: BLE001 - that is what we are hunting
        rep.fail(f"{kind}: {type(e).__name__}: {e}"[:160], data)


NODE = ("aaah.fuzz.example", "fuzz.example")


def check_diameter(data: bytes, rep: Report) -> None:
    rep.inputs += 1
    try:
        try:
            msg = dia.decode(data)
        except dia.DiameterDecodeError as e:
            rep.rejected[f"DiameterDecodeError {e.result_code}"] += 1
            if e.message.startswith("undecodable"):
                rep.fail(f"catch-all: {e.message}"[:160], data)
            if e.header is not None and e.header.is_request:
                ans = dia.encode_error_answer(e.header, e.result_code, *NODE,
                                              session_id=e.session_id,
                                              error_message=e.message,
                                              failed_avp=e.failed_avp)
                dia.parse_avps(ans, 20)
            return
        rep.decoded += 1
        try:
            raw = dia.encode(msg)
        except dia.DiameterEncodeError:
            rep.notes["re-encode refused (value python-diameter cannot encode)"] += 1
            return
        if dia.decode(raw) != msg:
            rep.fail("re-encode mismatch", data)
    except Exception as e:              # noqa: BLE001
        rep.fail(f"{type(e).__name__}: {e}"[:160], data)


# ----------------------------------------------------------------- engines


def run_mutate(codec: str, n: int, seed: int) -> Report:
    r = random.Random(f"{codec}:{seed}")
    rep = Report(codec)
    t0 = time.perf_counter()
    if codec == "mip":
        seeds = mip_seeds(r)
        everything = [s for v in seeds.values() for s in v]
        kinds = ["msg"] * 8 + ["icmp", "tunnel"]
        for seed_bytes in everything:           # the seeds themselves first
            for kind in seeds:
                if seed_bytes in seeds[kind]:
                    check_mip(kind, seed_bytes, rep)
        while rep.inputs < n:
            kind = r.choice(kinds)
            check_mip(kind, mutate(r, r.choice(seeds[kind]), everything, diameter=False),
                      rep)
    else:
        dseeds = diameter_seeds(r)
        for s in dseeds:
            check_diameter(s, rep)
        while rep.inputs < n:
            check_diameter(mutate(r, r.choice(dseeds), dseeds, diameter=True), rep)
    rep.seconds = time.perf_counter() - t0
    return rep


def run_atheris(codec: str, n: int, seed: int, json_path: str | None
                ) -> None:   # pragma: no cover - optional engine, never returns
    """Coverage-guided (libFuzzer) run of ``n`` inputs.  libFuzzer ends the process
    itself, so the report is printed from the last input; an unexpected exception is
    re-raised there, which atheris reports as a crash (non-zero exit)."""
    import os
    import tempfile

    import atheris  # type: ignore[import-not-found]

    atheris.instrument_all()
    rep = Report(codec)
    r = random.Random(seed)
    corpus = (mip_seeds(r)["msg"] if codec == "mip" else diameter_seeds(r))
    t0 = time.perf_counter()

    def finish() -> None:
        rep.seconds = time.perf_counter() - t0
        print_report(rep)
        if json_path:
            from bench.common import save_results
            save_results("fuzz_codecs", json_path,
                         {"benchmark": "fuzz_codecs", "engine": "atheris", "seed": seed,
                          "reports": [rep.to_json()]}, None)
        sys.stdout.flush()

    def one(data: bytes) -> None:
        if codec == "mip":
            kind = ("msg", "msg", "icmp", "tunnel")[data[0] % 4] if data else "msg"
            check_mip(kind, data[1:], rep)
        else:
            check_diameter(data, rep)
        if rep.unexpected:
            finish()
            raise RuntimeError(f"unexpected: {dict(rep.unexpected)}")
        if rep.inputs == n:
            finish()

    with tempfile.TemporaryDirectory() as d:
        for i, c in enumerate(corpus):
            with open(os.path.join(d, f"seed{i}"), "wb") as f:
                f.write((b"\0" if codec == "mip" else b"") + c)
        atheris.Setup([sys.argv[0], f"-runs={n}", f"-seed={seed}", "-max_len=4096", d],
                      one)
        atheris.Fuzz()


# ----------------------------------------------------------------- main


def print_report(rep: Report) -> None:
    j = rep.to_json()
    print(f"{rep.codec}: {rep.inputs} inputs in {rep.seconds:.2f} s "
          f"({j['inputs_per_s']} inputs/s); decoded {rep.decoded}, rejected "
          f"{sum(rep.rejected.values())}")
    for name, count in sorted(rep.rejected.items(), key=lambda kv: -kv[1]):
        print(f"    {count:>8}  {name}")
    for name, count in sorted(rep.notes.items()):
        print(f"    {count:>8}  note: {name}")
    if rep.unexpected:
        print(f"  UNEXPECTED ({sum(rep.unexpected.values())}):")
        for name, count in rep.unexpected.most_common():
            print(f"    {count:>8}  {name}")
        for what, hx in rep.samples:
            print(f"    sample ({what[:60]}): {hx[:400]}")
    else:
        print("  unexpected exceptions: 0")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fuzz_codecs", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_INPUTS} inputs per codec (the unit test's mode)")
    ap.add_argument("--inputs", type=int, default=None,
                    help=f"inputs per codec (default {FULL_INPUTS})")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--codec", choices=["mip", "diameter", "all"], default="all")
    ap.add_argument("--engine", choices=["mutate", "atheris"], default="mutate")
    ap.add_argument("--json", default=None,
                    help="write the reports as JSON here "
                         "(bench/results/fuzz_codecs.json is the committed one)")
    args = ap.parse_args(argv)
    n = args.inputs or (QUICK_INPUTS if args.quick else FULL_INPUTS)
    codecs = ["mip", "diameter"] if args.codec == "all" else [args.codec]
    from bench.common import machine
    before = machine()          # load average before the run, for the JSON
    if args.engine == "atheris":       # libFuzzer exits the process: one per codec
        if len(codecs) == 1:
            run_atheris(codecs[0], n, args.seed, args.json)
            return 0
        import subprocess
        rcs = [subprocess.call([sys.executable, "-m", "bench.fuzz_codecs", "--engine",
                                "atheris", "--codec", c, "--inputs", str(n), "--seed",
                                str(args.seed)]) for c in codecs]
        return 1 if any(rcs) else 0
    reports = []
    for codec in codecs:
        rep = run_mutate(codec, n, args.seed)
        print_report(rep)
        reports.append(rep)
    if args.json:   # with code, machine, load and command (issue 13)
        from bench.common import save_results
        save_results("fuzz_codecs", args.json,
                     {"benchmark": "fuzz_codecs", "machine": before, "engine": args.engine,
                      "seed": args.seed, "reports": [r.to_json() for r in reports]},
                     None)
    bad = sum(sum(r.unexpected.values()) for r in reports)
    short = [r.codec for r in reports if r.inputs < n]
    if short:
        print(f"fewer inputs than asked for: {short}")
    return 1 if bad or short else 0


if __name__ == "__main__":
    sys.exit(main())
