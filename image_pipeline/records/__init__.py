"""The file databases: stored images and event records, their names and layout."""
