"""Distributed execution of flownb runs on Redis with RQ workers (needs ``pip install 'flownb[redis]'``)."""
