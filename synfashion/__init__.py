"""SynFashion: the release as typed records, leak-free splits and Hub-ready Parquet / WebDataset shards."""

__version__ = "0.1.0"
