"""The bottom layer every other layer may use: the user-facing error types (``errors``), atomic
writes and output-folder hygiene (``atomic``), and cancellation of long work (``cancel``).
It imports nothing of Lobule and nothing outside the standard library."""
