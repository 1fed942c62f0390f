"""The shared part of the desktop app."""
