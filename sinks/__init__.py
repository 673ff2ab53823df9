"""Where samples go: InfluxDB (line protocol writer, InfluxQL reader) and the disk spool."""
