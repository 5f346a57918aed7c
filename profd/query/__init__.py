"""The read side, for the API and the UI: listing profiles (filters, sorting, cursor
pagination: profiles.py), the functions table (functions.py), aggregate and differential
flamegraphs (flamegraph.py; their node budget and subtree zoom: flame_tree.py) and function
regressions (regressions.py).

Every answer comes from what the store indexed at write time, the per-profile rows and
their hourly rollups (rollup.py, flame_rollup.py); no blob is read.
"""
