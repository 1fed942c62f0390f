"""The ffa part of the desktop app."""
