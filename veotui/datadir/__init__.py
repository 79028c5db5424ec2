"""The data directory on disk: its paths, the one-process lock, the jobs' files and pictures,
whether the disk accepts writes, and its size."""
