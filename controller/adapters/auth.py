"""REST authentication and authorisation, and the REST API's hostile-input guards.

Two kinds of credential, both sent as ``Authorization: Bearer <token>``:

- the **operator token**: everything.  From the environment variable
  ``MIPVPN_OPERATOR_TOKEN`` if set, else from the file ``RUN_DIR/operator.token``, created
  with mode 0600 (random, 256 bits) when absent.  Only the file's path is ever logged.
- a **user credential** per NAI: that user may read and change only their own VPN profile
  (claim 24; within the allowance the operator gave them, see ``rest.py``) and their own
  credential.  Only a salted scrypt hash is stored, in the table
  ``user_credentials`` of the VPN database file (0600, see ``store.py``).

Every comparison is constant time (``hmac.compare_digest``); scrypt runs off the event
loop (it releases the GIL) and a verification for an unknown NAI costs as much as for a
known one, so timing tells nothing about which users exist.  Failed attempts are counted per
(NAI, client address): ``MAX_FAILURES`` within ``FAILURE_WINDOW`` from one address give 429
there, not to the same user elsewhere.  Secrets never appear in a
response, an error message or a log line.

``install_hardening(app)`` adds what makes the API answer hostile input with a 4xx that
names the field, and never with a 500 that leaks anything: a request body limit (413),
validation errors as ``{"detail": [{"field": "body.qos.dscp", "message": ...}]}`` without
echoing the input, and a last-resort handler that logs the exception's type and
traceback (not its message, which may hold data) and answers a generic 500.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import stat
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controller.logtext import log_text
from controller.proto import nai as nai_syntax

LOG = logging.getLogger("mipvpn.rest.auth")

TOKEN_ENV = "MIPVPN_OPERATOR_TOKEN"
TOKEN_FILE = "operator.token"
MIN_SECRET_LEN = 16
MAX_SECRET_LEN = 256
MAX_BODY = 64 * 1024                 # bytes; larger request bodies get 413

# scrypt cost (RFC 7914): N=2^14, r=8, p=1 takes ~16 MiB and tens of ms per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024

CACHE_TTL = 60.0                     # s a successful user verification is remembered
MAX_FAILURES = 10                    # per (NAI, client address) and FAILURE_WINDOW, then 429
FAILURE_WINDOW = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS user_credentials (
    nai TEXT PRIMARY KEY,
    scheme TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    updated REAL NOT NULL
);
"""


#: The ``{nai}`` path parameter, wherever a route or dependency reads it: the RFC 7542
#: grammar of ``controller.proto.nai`` (user@realm), the same the decoders and the
#: topology loader check (a pattern counts characters, not octets: a longer UTF-8 NAI
#: names no stored user, since every stored one passed ``nai.is_valid``).
NAI_PATH: Any = PathParam(min_length=3, max_length=nai_syntax.MAX_OCTETS,
                          pattern=nai_syntax.USER_AT_REALM_PATTERN,
                          description="the user's NAI (user@realm, RFC 7542)",
                          examples=["alice@home.example"])


class AuthConfigError(ValueError):
    """The operator token cannot be loaded (too short, empty file, ...)."""


# ----------------------------------------------------------------- operator token


def load_operator_token(run_dir: str | Path, env: dict[str, str] | None = None
                        ) -> tuple[str, str]:
    """The operator token and where it comes from (a path, or the variable's name).

    ``$MIPVPN_OPERATOR_TOKEN`` wins; else ``RUN_DIR/operator.token`` is read, or created
    0600 with a fresh random token.  A file readable by group/others is narrowed to 0600.
    """
    env = dict(os.environ) if env is None else env
    value = env.get(TOKEN_ENV)
    if value is not None:
        value = value.strip()
        if len(value) < MIN_SECRET_LEN:
            raise AuthConfigError(f"{TOKEN_ENV} must be at least {MIN_SECRET_LEN} characters")
        return value, f"${TOKEN_ENV}"
    path = Path(run_dir) / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            LOG.warning("%s had mode %o; narrowed to 0600", path, mode)
            os.chmod(path, 0o600)
        value = path.read_text(encoding="utf-8").strip()
        if len(value) < MIN_SECRET_LEN:
            raise AuthConfigError(f"{path}: operator token shorter than {MIN_SECRET_LEN} "
                                  "characters (delete the file to get a new one)") from None
        return value, str(path)
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return value, str(path)


def operator_headers(run_dir: str | Path) -> dict[str, str]:
    """HTTP headers for a local client of the REST API (the demo, scripts, tests)."""
    token, _src = load_operator_token(run_dir)
    return {"Authorization": f"Bearer {token}"}


# ----------------------------------------------------------------- user credentials


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32)


class UserCredentials:
    """Salted scrypt hashes of the users' REST credentials, one per NAI (SQLite)."""

    def __init__(self, path: str | Path, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
                 p: int = SCRYPT_P) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(self.path, 0o600)
        self.n, self.r, self.p = n, r, p
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        self._db.executescript(_SCHEMA)
        self._db.commit()
        # a hash to burn time on for unknown NAIs (same cost as a real check)
        self._dummy = (self._scheme(), secrets.token_bytes(16), secrets.token_bytes(32))

    def _scheme(self) -> str:
        return f"scrypt:{self.n}:{self.r}:{self.p}"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def set(self, nai: str, secret: str, now: float | None = None) -> None:
        """Store (or replace) ``nai``'s credential."""
        if not MIN_SECRET_LEN <= len(secret) <= MAX_SECRET_LEN:
            raise ValueError(f"a credential has {MIN_SECRET_LEN}..{MAX_SECRET_LEN} characters")
        salt = secrets.token_bytes(16)
        digest = _scrypt(secret.encode("utf-8"), salt, self.n, self.r, self.p)
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO user_credentials VALUES (?, ?, ?, ?, ?)",
                (nai, self._scheme(), salt, digest, time.time() if now is None else now))

    def remove(self, nai: str) -> bool:
        with self._lock, self._db:
            return self._db.execute("DELETE FROM user_credentials WHERE nai = ?",
                                    (nai,)).rowcount > 0

    def has(self, nai: str) -> bool:
        return self._row(nai) is not None

    def _row(self, nai: str) -> tuple[str, bytes, bytes] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT scheme, salt, hash FROM user_credentials WHERE nai = ?",
                (nai,)).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]), bytes(row[2]))

    def verify(self, nai: str, secret: str) -> bool:
        """Constant-time check; blocking (tens of ms): call it off the event loop."""
        row = self._row(nai)
        known = row is not None
        scheme, salt, digest = row if row is not None else self._dummy
        try:
            _name, n, r, p = scheme.split(":")
            got = _scrypt(secret.encode("utf-8", "surrogatepass"), salt, int(n), int(r),
                          int(p))
        except (ValueError, MemoryError):
            return False
        return hmac.compare_digest(got, digest) and known


# ----------------------------------------------------------------- authorisation


@dataclass(frozen=True)
class Principal:
    role: str                       # "operator" | "user"
    nai: str = ""


_bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                     description="The operator token, or a user's own credential "
                                 "(only for that user's /v1/profiles/{nai} and "
                                 "/v1/users/{nai}/credential).")


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(401, why, headers={"WWW-Authenticate": 'Bearer realm="mipvpn"'})


class Auth:
    """Who may call what.  Hand ``auth.operator`` / ``auth.operator_or_user`` to
    FastAPI's ``Depends``."""

    def __init__(self, operator_token: str, credentials: UserCredentials | None = None,
                 *, token_source: str = "") -> None:
        if len(operator_token) < MIN_SECRET_LEN:
            raise AuthConfigError(f"operator token shorter than {MIN_SECRET_LEN} characters")
        self._operator = operator_token.encode("utf-8")
        self.credentials = credentials
        self.token_source = token_source
        #: auth_ok, auth_missing, auth_invalid, auth_throttled (no secrets)
        self.counters: collections.Counter[str] = collections.Counter()
        self._cache: dict[str, dict[bytes, float]] = {}
        #: failed verifications per (NAI, client address): one client's failures do not
        #: lock the user out from elsewhere
        self._failures: dict[tuple[str, str], collections.deque[float]] = {}
        self._sem: asyncio.Semaphore | None = None
        self._last_log = 0.0

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, db_path: str | Path) -> Auth:
        token, source = load_operator_token(run_dir)
        return cls(token, UserCredentials(db_path), token_source=source)

    # -- checks ----------------------------------------------------------------

    def is_operator(self, token: str) -> bool:
        return hmac.compare_digest(token.encode("utf-8", "surrogatepass"), self._operator)

    async def is_user(self, nai: str, token: str, client: str = "") -> bool:
        """Whether ``token`` is ``nai``'s credential; 429 after ``MAX_FAILURES`` failed
        attempts from ``client`` (its address) for ``nai`` within ``FAILURE_WINDOW``."""
        if self.credentials is None:
            return False
        key = hashlib.sha256(nai.encode("utf-8", "surrogatepass") + b"\0"
                             + token.encode("utf-8", "surrogatepass")).digest()
        now = time.monotonic()
        cached = self._cache.get(nai, {})
        if any(hmac.compare_digest(key, k) and exp > now for k, exp in cached.items()):
            return True
        who = (nai, client)
        fails = self._failures.setdefault(who, collections.deque())
        while fails and fails[0] < now - FAILURE_WINDOW:
            fails.popleft()
        if not fails:
            del self._failures[who]
        if len(fails) >= MAX_FAILURES:
            self.counters["auth_throttled"] += 1
            raise HTTPException(429, "too many failed attempts; retry later",
                                headers={"Retry-After": str(int(FAILURE_WINDOW))})
        if self._sem is None:
            self._sem = asyncio.Semaphore(2)   # bounds scrypt CPU/memory under attack
        async with self._sem:
            ok = await asyncio.to_thread(self.credentials.verify, nai, token)
        if ok:
            if sum(len(v) for v in self._cache.values()) > 1024:
                self._cache.clear()
            self._cache.setdefault(nai, {})[key] = now + CACHE_TTL
        else:
            if len(self._failures) > 10_000:      # bounded under NAI spraying
                self._failures = {k: v for k, v in self._failures.items()
                                  if v and v[-1] > now - FAILURE_WINDOW}
            self._failures.setdefault(who, collections.deque()).append(now)
        return ok

    def forget(self, nai: str) -> None:
        """Drop cached verifications of ``nai`` (its credential changed)."""
        self._cache.pop(nai, None)

    def _reject(self, what: str) -> None:
        self.counters[what] += 1
        now = time.monotonic()
        if now - self._last_log > 10.0:       # rate-limited; never the token itself
            self._last_log = now
            LOG.warning("REST request rejected (%s); totals %s", what, dict(self.counters))

    # -- FastAPI dependencies ----------------------------------------------------

    async def operator(self, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
                       ) -> Principal:
        if creds is None:
            self._reject("auth_missing")
            raise _unauthorized("bearer token required")
        if not self.is_operator(creds.credentials):
            self._reject("auth_invalid")
            raise _unauthorized("invalid token (this needs the operator token)")
        self.counters["auth_ok"] += 1
        return Principal("operator")

    async def operator_or_user(self, request: Request, nai: str = NAI_PATH,
                               creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
                               ) -> Principal:
        """The operator, or the user whose NAI is the path's ``{nai}``.  Failures are
        counted per (NAI, client address): the address the connection comes from, never
        a header (behind a proxy every client shares the proxy's)."""
        if creds is None:
            self._reject("auth_missing")
            raise _unauthorized("bearer token required")
        if self.is_operator(creds.credentials):
            self.counters["auth_ok"] += 1
            return Principal("operator")
        client = request.client.host if request.client is not None else ""
        if await self.is_user(nai, creds.credentials, client):
            self.counters["auth_ok"] += 1
            return Principal("user", nai)
        self._reject("auth_invalid")
        raise _unauthorized("invalid token for this user")


# ----------------------------------------------------------------- hardening


_NO_BODY = ("GET", "HEAD", "DELETE", "OPTIONS")


class BodyLimit:
    """ASGI middleware: request bodies over ``limit`` bytes get 413 before any handler
    (checked on Content-Length and again while streaming a chunked body)."""

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, {"detail": "bad Content-Length"})
                    return
        if declared is not None and declared > self.limit:
            await _send_json(send, 413, {"detail": f"request body over {self.limit} bytes"})
            return
        if declared == 0 or (declared is None and scope.get("method") in _NO_BODY):
            await self.app(scope, receive, send)   # handlers of these never read a body
            return
        # read the whole body (bounded) so the limit holds for chunked bodies too
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await _send_json(send, 413, {"detail": f"request body over {self.limit} bytes"})
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_json(send: Callable[[Any], Awaitable[None]], status: int,
                     body: dict[str, Any]) -> None:
    import json
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "destinations", 0, "prefix")`` -> ``"body.destinations[0].prefix"``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_detail(errors: Any) -> list[dict[str, str]]:
    """Pydantic errors as ``[{"field", "message"}]``, never echoing the input."""
    out: list[dict[str, str]] = []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        msg = str(e.get("msg", "invalid"))
        if e.get("type") == "json_invalid":
            msg = "body is not valid JSON"
            loc = ("body",)
        elif e.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif e.get("type") == "missing":
            msg = "field required"
        item = {"field": field_name(loc) or "request", "message": msg}
        if item not in out:          # a path parameter is checked by route and dependency
            out.append(item)
    return out


#: Responses every route may give; added to the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request"},
    401: {"description": "Missing or invalid bearer token"},
    403: {"description": "Authenticated, not allowed"},
    404: {"description": "Not found"},
    413: {"description": "Request body too large"},
    422: {"description": "Invalid input; `detail` names each field and the reason"},
    429: {"description": "Too many failed authentication attempts"},
}


def install_hardening(app: FastAPI, *, max_body: int = MAX_BODY) -> None:
    """Body limit, field-naming validation errors, generic 500 without secrets."""
    app.add_middleware(BodyLimit, limit=max_body)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(exc.errors())}, status_code=422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        # the type and where: not str(exc), which may carry request data or secrets
        where = "".join(traceback.format_tb(exc.__traceback__)[-3:])
        LOG.error("unhandled %s on %s %s\n%s", type(exc).__name__, log_text(request.method),
                  log_text(request.url.path), where)
        return JSONResponse({"detail": "internal error"}, status_code=500)
