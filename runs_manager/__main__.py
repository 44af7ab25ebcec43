"""The entry point of the `runs` command and of `python -m runs_manager`.

Ctrl-C ends `runs` quietly with status 130 at any moment, including while Python is
still loading it and while it shuts down.
"""
import os
import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    # Python prints and then drops an exception raised inside a finalizer or an import-lock
    # callback: ask again once the interpreter is out of it.
    code = getattr(frame, "f_code", None)
    if code is not None and (code.co_filename.startswith("<frozen importlib") or code.co_name == "__del__"):
        os.kill(os.getpid(), signal.SIGINT)
        return
    raise KeyboardInterrupt


def console() -> None:
    try:
        from runs_manager.main import main

        status = main()
    except BaseException as e:
        if not _from_interrupt(e):
            raise
        status = 130
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the work is done: no traceback from clean-up
    sys.exit(status)


def _from_interrupt(error: BaseException) -> bool:
    """Whether ``error`` is Ctrl-C, or wraps it: Python turns a KeyboardInterrupt raised in
    some places (a class's __set_name__ while a module loads) into another exception."""
    seen = set()
    current: "BaseException | None" = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


signal.signal(signal.SIGINT, _interrupt)

if __name__ == "__main__":
    console()
