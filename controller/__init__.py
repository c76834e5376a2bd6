"""mipvpn: the controller package.

Importing it decides, once per process, whether the mypyc-compiled build of the hot
modules is used (`controller.compiled`: only when its manifest matches the sources;
`MIPVPN_PURE=1` forces pure Python).
"""

from controller import compiled as _compiled

_compiled.activate()
