"""What every tab of the desktop app uses: the background-job runner, settings, error texts, the folder chooser."""
