"""Entry point of the frozen app: the same sub-commands as the ``lobule`` console script.

Started without arguments (from the desktop entry or a file manager) it opens the GUI."""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from lobule.app.cli import main

    sys.exit(main(sys.argv[1:] or ["gui"]))
