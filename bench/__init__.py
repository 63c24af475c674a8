"""Side-by-side benchmark: this function against the serving stacks people would pick instead.

`python -m bench` fits the shared models, installs the peers into their own virtual environments,
runs every system pinned to one CPU with `wrk` on the other, and writes a table, JSON and an SVG chart.
"""
