"""The slide part of the desktop app."""
