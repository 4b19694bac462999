"""What TaskGroup raises on Python 3.10, which has no builtin
BaseExceptionGroup/ExceptionGroup (3.11 and later use the builtins and never
import this).

The `exceptiongroup` backport's classes if it is installed: the ones 3.10
code already catches (`from exceptiongroup import ExceptionGroup`; pytest,
trio and anyio use them there). Else a small pair of the same shape:
message, exceptions, subgroup(), split(), derive(), and
BaseExceptionGroup(...) gives an ExceptionGroup when every exception is an
Exception, as the builtin does.
"""
try:
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup
except ImportError:
    class BaseExceptionGroup(BaseException):
        """A group of exceptions raised together (PEP 654's shape)."""

        def __new__(cls, message, exceptions):
            exceptions = tuple(exceptions)
            if not exceptions:
                raise ValueError("second argument (exceptions) must be a non-empty sequence")
            if cls is BaseExceptionGroup and all(isinstance(e, Exception) for e in exceptions):
                cls = ExceptionGroup
            self = super().__new__(cls, message, exceptions)
            self._message, self._exceptions = message, exceptions
            return self

        def __init__(self, message, exceptions):
            super().__init__(message, tuple(exceptions))

        @property
        def message(self):
            return self._message

        @property
        def exceptions(self):
            return self._exceptions

        def derive(self, excs):
            """A group of the same kind with the message, for other exceptions."""
            return BaseExceptionGroup(self._message, excs)

        def _match(self, condition):
            if isinstance(condition, type) or isinstance(condition, tuple):
                types = condition
                return lambda e: isinstance(e, types)
            return condition

        def split(self, condition):
            """(matching, rest): two groups (or None) of the exceptions, nested as here."""
            match = self._match(condition)
            if match(self):
                return self, None
            yes, no = [], []
            for e in self._exceptions:
                if isinstance(e, BaseExceptionGroup):
                    a, b = e.split(match)
                    if a is not None:
                        yes.append(a)
                    if b is not None:
                        no.append(b)
                elif match(e):
                    yes.append(e)
                else:
                    no.append(e)
            if not no and all(a is b for a, b in zip(yes, self._exceptions)):
                return self, None   # all of it matches: the group itself, as the builtin
            return (self.derive(yes) if yes else None), (self.derive(no) if no else None)

        def subgroup(self, condition):
            """The group of the exceptions that match, or None."""
            return self.split(condition)[0]

        def __str__(self):
            n = len(self._exceptions)
            return "%s (%d sub-exception%s)" % (self._message, n, "" if n == 1 else "s")

        def __repr__(self):
            return "%s(%r, %r)" % (type(self).__name__, self._message, list(self._exceptions))

    class ExceptionGroup(BaseExceptionGroup, Exception):
        """A group of Exceptions (what TaskGroup raises for failed tasks)."""
