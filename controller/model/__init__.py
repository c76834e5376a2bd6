"""The model leaf: plain data the codecs (``controller.proto``) and the roles
(``controller.core``) share.  Imports nothing from ``controller`` but itself."""
