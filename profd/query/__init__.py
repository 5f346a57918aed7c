"""The read side, for the API and the UI: listing profiles (filters, sorting, cursor
pagination: profiles.py), the functions table (functions.py), aggregate and differential
flamegraphs (flamegraph.py, over the merged flame trees of flame_rollup.py) and function
regressions (regressions.py).

Every answer comes from what the store indexed at write time, the per-profile rows and
their hourly and daily rollups (rollup.py); no blob is read.
"""
