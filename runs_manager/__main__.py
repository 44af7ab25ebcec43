"""The entry point of the `runs` command and of `python -m runs_manager`.

Ctrl-C ends `runs` quietly with status 130 at any moment, including while Python is
still loading it and while it shuts down.
"""
try:
    import signal

    # Until _interrupt below is in place, a Ctrl-C is only noted: raised inside an import
    # lock's callback while the modules below load, Python would print it and drop it.
    _held = []
    signal.signal(signal.SIGINT, lambda signum, frame: _held.append(signum))
    import _thread  # built in: `threading` would cost start-up time
    import os
    import sys
    import time
except KeyboardInterrupt:  # Ctrl-C while Python is still loading
    raise SystemExit(130) from None

REDELIVER_AFTER = 0.01  # seconds


def _interrupt(signum: int, frame: object) -> None:
    # Python prints and then drops an exception raised inside a finalizer or an import-lock
    # callback (or anything they call): deliver Ctrl-C again in a moment, once out of them.
    while frame is not None:
        code = getattr(frame, "f_code", None)
        if code is not None and (code.co_name == "__del__" or code.co_filename.startswith("<frozen importlib")):
            _thread.start_new_thread(_redeliver, ())
            return
        frame = getattr(frame, "f_back", None)
    raise KeyboardInterrupt


def _redeliver() -> None:
    time.sleep(REDELIVER_AFTER)
    os.kill(os.getpid(), signal.SIGINT)


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


def _ignore_interrupts() -> None:
    # A Ctrl-C (or one held back and delivered again) may land while this is being set up.
    while True:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return
        except KeyboardInterrupt:
            continue


def console() -> None:
    if sys.argv[1:2] == ["__complete"]:  # shell completion, on every Tab: none of main's imports
        try:
            from runs_manager.complete import main as complete

            status = complete(sys.argv[2:])
        except KeyboardInterrupt:
            status = 130
        sys.exit(status)
    try:
        from runs_manager.main import main

        status = main()
    except BaseException as e:
        if not _from_interrupt(e):
            raise
        status = 130
    _ignore_interrupts()  # the work is done: no traceback from clean-up
    if status == 130:
        # Interrupted: objects left half-made may complain as Python tears them down.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


try:
    signal.signal(signal.SIGINT, _interrupt)
    if _held:  # a Ctrl-C came while loading
        raise KeyboardInterrupt
except KeyboardInterrupt:
    raise SystemExit(130) from None

if __name__ == "__main__":
    console()
