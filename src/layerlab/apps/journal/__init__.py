"""The lab journal: dated markdown entries linked to runs, one written when a run finishes."""
