"""The volume part of the desktop app."""
