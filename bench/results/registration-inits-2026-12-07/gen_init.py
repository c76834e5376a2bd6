# ruff: noqa  (the one-time generator of the handwritten __init__s, kept as it was run)
"""Insert a handwritten __init__ into the named dataclasses (one-time code generation)."""
import ast, sys
from pathlib import Path

def gen(path, names):
    src = Path(path).read_text()
    lines = src.splitlines(keepends=True)
    tree = ast.parse(src)
    inserts = []
    for node in tree.body:
        if not (isinstance(node, ast.ClassDef) and node.name in names):
            continue
        dec = [d for d in node.decorator_list if "dataclass" in ast.get_source_segment(src, d)]
        assert dec, node.name
        frozen = "frozen=True" in ast.get_source_segment(src, dec[0])
        fields, post = [], False
        last = None
        for st in node.body:
            if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
                ann = ast.get_source_segment(src, st.annotation)
                if ann.startswith("ClassVar"):
                    continue
                default = factory = None
                if st.value is not None:
                    v = st.value
                    if isinstance(v, ast.Call) and ast.get_source_segment(src, v.func) == "field":
                        for kw in v.keywords:
                            if kw.arg == "default":
                                default = ast.get_source_segment(src, kw.value)
                            elif kw.arg == "default_factory":
                                factory = ast.get_source_segment(src, kw.value)
                            elif kw.arg == "init":
                                raise SystemExit(f"{node.name}: init= field")
                    else:
                        default = ast.get_source_segment(src, v)
                fields.append((st.target.id, ann, default, factory))
                last = st.end_lineno
            elif isinstance(st, ast.FunctionDef) and st.name == "__post_init__":
                post = True
            elif isinstance(st, ast.FunctionDef) and st.name == "__init__":
                raise SystemExit(f"{node.name} has __init__")
        params = []
        for n, ann, d, f in fields:
            if f is not None:
                params.append(f"{n}: {ann} | None = None")
            elif d is not None:
                params.append(f"{n}: {ann} = {d}")
            else:
                params.append(f"{n}: {ann}")
        # wrap the signature
        out = []
        head = "    def __init__(self, "
        cur = head
        indent = " " * len(head)
        for i, p in enumerate(params):
            piece = p + (", " if i < len(params) - 1 else ") -> None:")
            if len(cur) + len(piece.rstrip()) > 100 and cur.strip() != head.strip():
                out.append(cur.rstrip() + "\n")
                cur = indent
            cur += piece
        out.append(cur + "\n")
        for n, ann, d, f in fields:
            val = n if f is None else f"{n} if {n} is not None else {f}()"
            if frozen:
                out.append(f'        object.__setattr__(self, "{n}", {val})\n')
            else:
                out.append(f"        self.{n} = {val}\n")
        if post:
            out.append("        self.__post_init__()\n")
        # insert after the last field (and any comment lines directly following it)
        at = last
        inserts.append((at, ["\n"] + out))
    assert len(inserts) == len(names), (path, names, len(inserts))
    for at, block in sorted(inserts, reverse=True):
        lines[at:at] = block
    Path(path).write_text("".join(lines))

path = sys.argv[1]
gen(path, set(sys.argv[2:]))
