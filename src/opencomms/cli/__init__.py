"""Process entry points: the `opencomms` command is `main` (its commands: cli/app.py)."""

import gc


def main() -> None:
    """Loads the commands, then runs the one asked for."""
    # Loading them builds some 200,000 objects the cyclic collector tracks, nearly all of
    # them for the life of the process; collecting as they pile up rescans them again and
    # again (about 0.1 s of every start). So it is off while they load, and what they built
    # is then frozen out of its passes (a server's start freezes what it adds: tune_gc).
    gc.disable()
    try:
        from opencomms.cli.app import main as run
    finally:
        gc.freeze()
        gc.enable()
    run()
