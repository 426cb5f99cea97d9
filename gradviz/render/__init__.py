"""Turning computation graphs into DOT source and rendered diagrams."""
