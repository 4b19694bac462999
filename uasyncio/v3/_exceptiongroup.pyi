# Type stub of uasyncio.v3._exceptiongroup: the builtin classes' shape
# (what the module gives on 3.10; 3.11 and later use the builtins).
from builtins import BaseExceptionGroup as BaseExceptionGroup, ExceptionGroup as ExceptionGroup
