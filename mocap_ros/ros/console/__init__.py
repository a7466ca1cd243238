"""The operator console: a web page (and a viser 3D view) to watch the loop and arm teleop."""
