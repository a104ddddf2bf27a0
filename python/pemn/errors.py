"""pemn.errors — the library's pemn_rc codes as Python exceptions.

Every failure of a libpemn call raises an instance of a subclass of :class:`Error` carrying
the code (``rc``, the C enum value; ``code``, its stable name such as ``"ECORRUPT"``), the
library's message and, where the library names one, the byte offset in the input. Where a
Python built-in exception means the same thing the class derives from it too, so
``except FileNotFoundError`` or ``except ValueError`` also work.
"""
from ._lib import lib, Err

_BUILTIN_TIMEOUT = TimeoutError


class Error(Exception):
    """A libpemn failure: ``rc`` (int), ``code`` ("ECORRUPT"...), ``message``, ``offset``."""

    rc = -1

    def __init__(self, rc, message="", offset=None):
        self.rc = rc
        self.code = lib.pemn_rc_name(rc).decode()
        self.reason = lib.pemn_strerror(rc).decode()
        self.message = message or self.reason
        self.offset = offset
        text = "%s: %s" % (self.code, self.message)
        Exception.__init__(self, text)


class NoMemoryError(Error, MemoryError):
    pass


class InvalidError(Error, ValueError):
    pass


class IOError(Error, OSError):  # noqa: A001 (deliberately mirrors PEMN_EIO)
    pass


class CorruptError(Error, ValueError):
    pass


class BadSignatureError(Error):
    pass


class UntrustedError(Error):
    pass


class NotFoundError(Error, LookupError):
    pass


class ExistsError(Error, FileExistsError):
    pass


class TooBigError(Error, ValueError):
    pass


class VersionError(Error):
    pass


class DatabaseError(Error):
    pass


class HTTPError(Error, ConnectionError):
    pass


class DigestError(Error):
    pass


class RollbackError(Error):
    pass


class AuthError(Error, PermissionError):
    pass


class ConflictError(Error):
    pass


class TimeoutError(Error, _BUILTIN_TIMEOUT):  # noqa: A001
    pass


class UnsupportedError(Error, NotImplementedError):
    pass


class CanceledError(Error):
    pass


# the order of enum pemn_rc (include/pemn/common.h), from PEMN_ENOMEM = 1
_CLASSES = [None, NoMemoryError, InvalidError, IOError, CorruptError, BadSignatureError,
            UntrustedError, NotFoundError, ExistsError, TooBigError, VersionError,
            DatabaseError, HTTPError, DigestError, RollbackError, AuthError, ConflictError,
            TimeoutError, UnsupportedError, CanceledError]
for _i, _c in enumerate(_CLASSES):
    if _c is not None:
        _c.rc = _i


def error_class(rc):
    """The exception class of a pemn_rc value."""
    if 0 < rc < len(_CLASSES):
        return _CLASSES[rc]
    return Error


def make(rc, err=None, context=None):
    """An exception for rc, with the message of a filled struct pemn_err if any."""
    msg = ""
    offset = None
    if err is not None and err.msg:
        msg = err.msg.decode("utf-8", "replace")
        if err.offset != 0xFFFFFFFFFFFFFFFF:
            offset = int(err.offset)
    if not msg:
        msg = lib.pemn_strerror(rc).decode()
    if context:
        msg = "%s: %s" % (context, msg)
    return error_class(rc)(rc, msg, offset)


def check(rc, err=None, context=None):
    """Raises for a nonzero rc."""
    if rc:
        raise make(rc, err, context)
